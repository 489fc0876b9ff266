import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { type RateLimiter, STATE_KEY } from "../../src/object/rate-limiter.ts";
import type { Rule } from "../../src/policy/types.ts";
import { decideOne, meter, useClock } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const threePerTen: Rule = {
  name: "default",
  algorithm: "token-bucket",
  limit: 3,
  periodSeconds: 10,
  burst: 3,
  cost: 1,
  mode: "enforce",
  onError: "allow",
  key: "client",
  scope: "client",
};
const options = { rules: [threePerTen], idleRetentionSeconds: 60 };

/** A fresh client's object, running on `clock`. */
async function clientOnClock(name: string, clock: ManualClock) {
  const stub = env.RATE_LIMITER.getByName(name);
  await useClock(stub, clock);
  return stub;
}

/** How many keys the object has stored: 1 for a stored client, 0 after cleanup. */
function storedRows(state: DurableObjectState): number {
  return [...state.storage.kv.list()].length;
}

/** The client's stored state, as JSON text. */
function storedState(state: DurableObjectState): string {
  return JSON.stringify(state.storage.kv.get(STATE_KEY) ?? null);
}

describe("RateLimiter object", () => {
  it("keeps its state across eviction without refilling", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("evicted", clock);
    for (let i = 0; i < 3; i++) expect((await decideOne(stub, options)).allowed).toBe(true);

    await evictDurableObject(stub);
    await useClock(stub, clock);
    const after = await decideOne(stub, options);
    expect(after.allowed).toBe(false);
    expect(after.rules[0]).toMatchObject({ remaining: 0, retryAfterSeconds: 4 });
  });

  it("keeps what the client spent when a new deployment raises the limit: 3 spent of 3, then 5 allows exactly 2 more", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("raised", clock);
    for (let i = 0; i < 3; i++) expect((await decideOne(stub, options)).allowed).toBe(true);
    expect((await decideOne(stub, options)).allowed).toBe(false);
    // The new version's first request reaches a fresh instance, which starts from what the old one stored.
    await evictDurableObject(stub);
    await useClock(stub, clock);
    const raised = { ...options, rules: [{ ...threePerTen, limit: 5, burst: 5 }] };
    const decisions = [];
    for (let i = 0; i < 3; i++) decisions.push(await decideOne(stub, raised));
    expect(decisions.map((decision) => [decision.allowed, decision.rules[0]?.remaining])).toEqual([
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
  });

  it("writes nothing for a denied request", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("denied-writes", clock);
    for (let i = 0; i < 3; i++) await decideOne(stub, options);
    const before = await runInDurableObject(stub, (_: RateLimiter, state) => storedState(state));
    const written = await runInDurableObject(stub, async (limiter: RateLimiter, state) => {
      const puts = vi.spyOn(state.storage.kv, "put");
      const alarms = vi.spyOn(state.storage, "setAlarm");
      const decision = await decideOne(limiter, options);
      const writes = puts.mock.calls.length + alarms.mock.calls.length;
      puts.mockRestore();
      alarms.mockRestore();
      return { decision, writes };
    });
    expect(written.decision.allowed).toBe(false);
    expect(written.writes).toBe(0);
    const after = await runInDurableObject(stub, (_: RateLimiter, state) => storedState(state));
    expect(after).toEqual(before);
  });

  it("sets the cleanup alarm once, not per request", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("alarm-once", clock);
    const setAlarm = await runInDurableObject(stub, (_: RateLimiter, state) => vi.spyOn(state.storage, "setAlarm"));
    await decideOne(stub, options);
    const firstAlarm = await runInDurableObject(stub, (_: RateLimiter, state) => state.storage.getAlarm());
    expect(firstAlarm).toBe(clock.nowMs() + 3333 + 1 + 60_000);
    for (let i = 0; i < 5; i++) {
      clock.advanceSeconds(1);
      await decideOne(stub, options);
    }
    expect(setAlarm).toHaveBeenCalledTimes(1);
    expect(await runInDurableObject(stub, (_: RateLimiter, state) => state.storage.getAlarm())).toBe(firstAlarm);
  });

  it("deletes a client whose bucket is full again when the alarm fires", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("cleanup-full", clock);
    await decideOne(stub, options);
    clock.advanceSeconds(61);
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    const storage = await runInDurableObject(stub, async (_: RateLimiter, state) => ({
      rows: storedRows(state),
      alarm: await state.storage.getAlarm(),
    }));
    expect(storage).toEqual({ rows: 0, alarm: null });
    // The deleted client is indistinguishable from a new one, and can be limited again.
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push((await decideOne(stub, options)).allowed);
    expect(decisions).toEqual([true, true, true, false]);
    expect(await runInDurableObject(stub, (_: RateLimiter, state) => storedRows(state))).toBe(1);
  });

  it("keeps a client still refilling and moves its alarm to when it will be full", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("cleanup-refilling", clock);
    for (let i = 0; i < 3; i++) await decideOne(stub, options);
    clock.advanceSeconds(5);
    const spentAtMs = clock.nowMs();
    await decideOne(stub, options); // one token had refilled: spend it again, bucket empty at +5 s
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    const after = await runInDurableObject(stub, async (_: RateLimiter, state) => ({
      rows: storedRows(state),
      alarm: await state.storage.getAlarm(),
    }));
    expect(after.rows).toBe(1);
    // Empty at spentAtMs with 1/3 token left over: full 8 333.4 ms later, plus the 60 s retention.
    expect(after.alarm).toBe(spentAtMs + 8334 + 60_000);
    expect((await decideOne(stub, options)).allowed).toBe(false);
  });

  it("admits exactly the burst out of 200 concurrent requests", async () => {
    const clock = new ManualClock();
    const burst50: Rule = { ...threePerTen, limit: 50, periodSeconds: 60, burst: 50 };
    const stub = await clientOnClock("concurrent", clock);
    const decisions = await Promise.all(Array.from({ length: 200 }, () => decideOne(stub, { rules: [burst50], idleRetentionSeconds: 60 })));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
  });

  it("charges every rule or none", async () => {
    const clock = new ManualClock();
    const perSecond: Rule = { ...threePerTen, name: "per-second", limit: 2, periodSeconds: 1, burst: 2 };
    const perHour: Rule = { ...threePerTen, name: "per-hour", limit: 3, periodSeconds: 3600, burst: 3 };
    const stub = await clientOnClock("all-or-nothing", clock);
    const both = { rules: [perSecond, perHour], idleRetentionSeconds: 60 };
    expect((await decideOne(stub, both)).allowed).toBe(true);
    expect((await decideOne(stub, both)).allowed).toBe(true);
    const denied = await decideOne(stub, both);
    expect(denied.allowed).toBe(false);
    // The hourly rule would have admitted it but was not charged.
    expect(denied.rules.map((r) => [r.name, r.allowed, r.remaining])).toEqual([
      ["per-second", false, 0],
      ["per-hour", true, 1],
    ]);
    clock.advanceSeconds(1);
    expect((await decideOne(stub, both)).rules.map((r) => r.remaining)).toEqual([1, 0]);
  });

  it("never refills the same interval twice when the clock steps back after a denial", async () => {
    const clock = new ManualClock();
    const bucket: Rule = { ...threePerTen, name: "bucket" };
    const hourly: Rule = { ...threePerTen, name: "hourly", limit: 1, periodSeconds: 3600, burst: 1 };
    const both = { rules: [bucket, hourly], idleRetentionSeconds: 60 };
    const bucketOnly = { rules: [bucket], idleRetentionSeconds: 60 };
    const stub = await clientOnClock("clock-steps-back", clock);
    expect((await decideOne(stub, both)).allowed).toBe(true);
    for (let i = 0; i < 2; i++) expect((await decideOne(stub, bucketOnly)).allowed).toBe(true);
    clock.advanceSeconds(20);
    // The hourly rule denies, so the bucket (full again by now) is neither charged nor written.
    expect((await decideOne(stub, both)).allowed).toBe(false);
    clock.advanceSeconds(-10);
    let admitted = 0;
    for (let i = 0; i < 3; i++) if ((await decideOne(stub, bucketOnly)).allowed) admitted++;
    clock.advanceSeconds(10);
    for (let i = 0; i < 3; i++) if ((await decideOne(stub, bucketOnly)).allowed) admitted++;
    // All six happen at the latest time seen (t0 + 20 s), when the bucket holds its burst of 3.
    expect(admitted).toBe(3);
  });

  it("writes the decisions of one group with one row write, and answers none before it", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("group-commit", clock);
    const burst50: Rule = { ...threePerTen, limit: 50, periodSeconds: 60, burst: 50 };
    const before = { ...meter };
    const decisions = await Promise.all(
      Array.from({ length: 20 }, () => decideOne(stub, { rules: [burst50], idleRetentionSeconds: 60, groupCommitMs: 20 })),
    );
    expect(decisions.every((d) => d.allowed)).toBe(true);
    expect(meter.flushes - before.flushes).toBe(1);
    expect(meter.rowsWritten - before.rowsWritten).toBe(1);
    const stored = await runInDurableObject(stub, (_: RateLimiter, state) => storedState(state));
    // 50 − 20 = 30 tokens, less the 3 (50 / 16) it reserves in advance: 27 tokens × 60 000 ms.
    expect(stored).toContain('"level":1620000');
  });

  describe("reservations", () => {
    // Burst 1600: each write charges 100 (1600 / 16) in advance, so 100 more admissions need no write.
    const burst1600: Rule = { ...threePerTen, limit: 1600, periodSeconds: 10, burst: 1600 };
    const big = { rules: [burst1600], idleRetentionSeconds: 60 };

    it("admit from units stored in advance without a write, and write when they are spent", async () => {
      const stub = await clientOnClock("reserve", new ManualClock());
      const before = { ...meter };
      expect((await decideOne(stub, big)).allowed).toBe(true);
      expect(meter.rowsWritten - before.rowsWritten).toBe(1);
      for (let i = 0; i < 100; i++) await decideOne(stub, big);
      expect(meter.rowsWritten - before.rowsWritten).toBe(1);
      const last = await decideOne(stub, big);
      expect(last.rules[0]?.remaining).toBe(1600 - 102);
      expect(meter.rowsWritten - before.rowsWritten).toBe(2);
    });

    it("cost a restarted client at most its unspent reservation, never a token more", async () => {
      const clock = new ManualClock();
      const stub = await clientOnClock("reserve-restart", clock);
      for (let i = 0; i < 51; i++) await decideOne(stub, big);
      await evictDurableObject(stub);
      await useClock(stub, clock);
      // Stored: 1600 − 1 − 100 reserved = 1499. Memory had 1549; the 50 reserved and unspent are lost.
      expect((await decideOne(stub, big)).rules[0]?.remaining).toBe(1498);
    });

    it("are not made when the policy turns them off: every admission writes, and a restart loses nothing", async () => {
      const clock = new ManualClock();
      const strict = { ...big, reservations: false };
      const stub = await clientOnClock("reserve-off", clock);
      const before = { ...meter };
      for (let i = 0; i < 51; i++) await decideOne(stub, strict);
      expect(meter.rowsWritten - before.rowsWritten).toBe(51);
      await evictDurableObject(stub);
      await useClock(stub, clock);
      expect((await decideOne(stub, strict)).rules[0]?.remaining).toBe(1600 - 52);
    });

    it("are not spent after their time is up, and the next admission writes", async () => {
      const clock = new ManualClock();
      const stub = await clientOnClock("reserve-expiry", clock);
      await decideOne(stub, big);
      const before = { ...meter };
      await decideOne(stub, big);
      expect(meter.rowsWritten - before.rowsWritten).toBe(0);
      // Stored dated 625 ms ahead (the time 100 tokens take to refill at 160 a second): valid until then.
      clock.advanceMs(624);
      await decideOne(stub, big);
      expect(meter.rowsWritten - before.rowsWritten).toBe(0);
      clock.advanceMs(1);
      await decideOne(stub, big);
      expect(meter.rowsWritten - before.rowsWritten).toBe(1);
    });
  });

  it("decides a batch in order exactly as separate checks, in one call and one row write", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("batch", clock);
    const before = { ...meter };
    const results = await stub.decide(Array.from({ length: 5 }, () => options));
    expect(results.map((result) => [result.allowed, result.rules[0]?.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
      [false, 0],
    ]);
    expect(meter.calls - before.calls).toBe(1);
    expect(meter.rowsWritten - before.rowsWritten).toBe(1);
    await evictDurableObject(stub);
    await useClock(stub, clock);
    expect((await decideOne(stub, options)).allowed).toBe(false);
  });

  it("writes nothing for a batch of denials", async () => {
    const clock = new ManualClock();
    const stub = await clientOnClock("batch-denied", clock);
    await stub.decide(Array.from({ length: 3 }, () => options));
    const before = { ...meter };
    const results = await stub.decide(Array.from({ length: 4 }, () => options));
    expect(results.every((result) => !result.allowed)).toBe(true);
    expect(meter.rowsWritten - before.rowsWritten).toBe(0);
    expect(meter.flushes - before.flushes).toBe(0);
  });

  it.each([
    ["before the group is written", 10],
    ["after the group is written", 400],
  ])("keeps every admission it answered when the object is aborted %s", async (_, abortAfterMs) => {
    const clock = new ManualClock();
    const name = `abort-${abortAfterMs}`;
    const stub = await clientOnClock(name, clock);
    const burst50: Rule = { ...threePerTen, limit: 50, periodSeconds: 60, burst: 50 };
    const pending = Array.from({ length: 20 }, () => decideOne(stub, { rules: [burst50], idleRetentionSeconds: 60, groupCommitMs: 100 }));
    const settling = Promise.allSettled(pending);
    await new Promise((resolve) => setTimeout(resolve, abortAfterMs));
    await runInDurableObject(stub, (_: RateLimiter, state) => state.abort("test: abort mid-group")).catch(() => undefined);
    const settled = await settling;
    const answered = settled.filter((result) => result.status === "fulfilled" && result.value.allowed).length;

    // A fresh instance reads what was stored: every answered admission must be in it.
    const fresh = env.RATE_LIMITER.getByName(name);
    await useClock(fresh, clock);
    const remaining = (await decideOne(fresh, { rules: [burst50], idleRetentionSeconds: 60, groupCommitMs: 0 })).rules[0]?.remaining ?? 0;
    const consumed = 50 - (remaining + 1);
    expect(consumed).toBeGreaterThanOrEqual(answered);
    if (abortAfterMs > 100) expect(answered).toBe(20);
    else expect(answered).toBe(0);
  });
});
