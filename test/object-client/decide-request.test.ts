import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { identifyClient } from "../../src/identity/identify.ts";
import { hashSecret } from "../../src/identity/secret.ts";
import type { ObjectRule } from "../../src/object/protocol.ts";
import type { RateLimiter } from "../../src/object/rate-limiter.ts";
import { GLOBAL_OBJECT } from "../../src/object-client/object-name.ts";
import { createApp } from "../../src/worker/app.ts";
import { meter, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

/** Sends `count` requests at once and returns their statuses. */
async function concurrently(count: number, send: () => Response | Promise<Response>): Promise<number[]> {
  const responses = await Promise.all(Array.from({ length: count }, send));
  return responses.map((response) => response.status);
}

describe("concurrent requests of one client", () => {
  it("reach its object in a few calls instead of one each, and exactly its burst is admitted", async () => {
    const clock = new ManualClock();
    const headers = { "x-api-key": "batched-client" };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "burst-25", limit: 25, period: "1h" }] }) };
    const callsBefore = meter.calls;

    const statuses = await concurrently(40, () => app.request("https://limiter.test/", { headers }, bindings));

    expect(statuses.filter((status) => status === 200)).toHaveLength(25);
    expect(statuses.filter((status) => status === 429)).toHaveLength(15);
    // One call goes at once; the requests that arrive while it is in flight go together in the next.
    expect(meter.calls - callsBefore).toBeLessThanOrEqual(3);
  });
});

describe("concurrent requests of many clients under a global rule", () => {
  it("admit exactly the global budget and refund exactly the clients it denied", async () => {
    const clock = new ManualClock();
    await runInDurableObject(env.RATE_LIMITER.getByName(GLOBAL_OBJECT), (limiter: RateLimiter) => {
      limiter.clock = clock;
    });
    const policy = {
      rules: [
        { name: "per-client-5", limit: 5, period: "1h" },
        { name: "batched-global-cap", limit: 10, period: "1h", scope: "global" },
      ],
    };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const clients = await Promise.all(
      Array.from({ length: 8 }, async (_, index) => {
        const headers = { "x-api-key": `batched-global-client-${index}` };
        await useClockFor(headers, clock);
        return headers;
      }),
    );
    const app = createApp({ clock });

    const perClient = await Promise.all(
      clients.map((headers) => concurrently(3, () => app.request("https://limiter.test/", { headers }, bindings))),
    );

    const admitted = perClient.map((statuses) => statuses.filter((status) => status === 200).length);
    expect(admitted.reduce((sum, count) => sum + count, 0)).toBe(10);
    // Each client was charged for its admitted requests only: its denied ones were refunded (by its object, or
    // by its lease in this isolate), so each has exactly the rest of its 5 left.
    const ownOnly = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [policy.rules[0]] }) };
    for (const [index, headers] of clients.entries()) {
      const more = [];
      for (let i = 0; i < 6; i++) more.push((await app.request("https://limiter.test/", { headers }, ownOnly)).status);
      expect(more.filter((status) => status === 200).length).toBe(5 - (admitted[index] ?? 0));
    }
  });
});

describe("clients with and without a tier on the same rules", () => {
  it("each get their own limit, whichever asked first", async () => {
    const clock = new ManualClock();
    const keys = ["untiered-first", "tiered-pro", "untiered-after"];
    for (const key of keys) await useClockFor({ "x-api-key": key }, clock);
    const policy = {
      rules: [{ name: "tiered-rule", limit: 2, period: "1h" }],
      tiers: { pro: { "tiered-rule": { limit: 5 } } },
      clients: { [`key:${await hashSecret("tiered-pro")}`]: "pro" },
    };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const app = createApp({ clock });
    const admitted = new Map(keys.map((key) => [key, 0]));
    for (let round = 0; round < 6; round++) {
      for (const key of keys) {
        const response = await app.request("https://limiter.test/", { headers: { "x-api-key": key } }, bindings);
        if (response.status === 200) admitted.set(key, (admitted.get(key) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(admitted)).toEqual({ "untiered-first": 2, "tiered-pro": 5, "untiered-after": 2 });
  });
});

describe("the policy's reservations switch", () => {
  it.each([
    [true, 1],
    [false, 3],
  ])("with reservations: %s, three admissions of a roomy rule cost %i row writes", async (reservations, rows) => {
    const clock = new ManualClock();
    const headers = { "x-api-key": `reservations-${reservations}` };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    // Without leases, which would answer the third request in this isolate and write the second for its grant.
    const policy = { rules: [{ name: "roomy", limit: 1600, period: "10s" }], reservations, leases: false };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const before = meter.rowsWritten;
    for (let i = 0; i < 3; i++) expect((await app.request("https://limiter.test/", { headers }, bindings)).status).toBe(200);
    expect(meter.rowsWritten - before).toBe(rows);
  });
});

describe("leases", () => {
  /** Sends `count` requests one after the other and returns their statuses. */
  async function oneByOne(count: number, send: () => Response | Promise<Response>): Promise<number[]> {
    const statuses = [];
    for (let i = 0; i < count; i++) statuses.push((await send()).status);
    return statuses;
  }

  it.each([
    [true, 4],
    [false, 100],
  ])("with leases: %s, a hot client's 100 requests take at most %i calls to its object", async (leases, calls) => {
    const clock = new ManualClock();
    const headers = { "x-api-key": `hot-client-leases-${leases}` };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "roomy-hot", limit: 10_000, period: "1s" }], leases }) };
    const before = meter.calls;
    const statuses = await oneByOne(100, () => app.request("https://limiter.test/", { headers }, bindings));
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(meter.calls - before).toBeLessThanOrEqual(calls);
    expect(meter.calls - before).toBeGreaterThanOrEqual(leases ? 2 : 100);
  });

  it("are never spent at another cost than they were charged at", async () => {
    const clock = new ManualClock();
    const headers = { "x-api-key": "leased-then-costlier" };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    const send = (cost: number) =>
      app.request(
        "https://limiter.test/",
        { headers },
        { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "costed", limit: 100, period: "1s", cost }] }) },
      );
    await oneByOne(3, () => send(1));
    // The same rule at cost 10: the lease held for cost 1 does not cover it, so the object decides it.
    const before = meter.calls;
    const costlier = await send(10);
    expect(costlier.status).toBe(200);
    expect(meter.calls - before).toBe(1);
  });

  it("admit exactly the burst, however the requests come, and say so in the headers", async () => {
    const clock = new ManualClock();
    const headers = { "x-api-key": "leased-exact" };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "burst-40", limit: 40, period: "1s" }] }) };
    const send = () => app.request("https://limiter.test/", { headers }, bindings);
    const first = await Promise.all([send(), send(), send(), send(), send()]);
    const later = await Promise.all(Array.from({ length: 60 }, send));
    const admitted = [...first, ...later].filter((response) => response.status === 200);
    expect(admitted).toHaveLength(40);
    // Each admission's remaining, as its headers say, is unique and counts down to 0: leased or not.
    const remaining = admitted.map((response) => Number(/r=(\d+)/.exec(response.headers.get("RateLimit") ?? "")?.[1]));
    expect(new Set(remaining).size).toBe(40);
    expect(Math.min(...remaining)).toBe(0);
  });

  it("give back what they did not spend with the next call once they end, so nothing is lost", async () => {
    const clock = new ManualClock();
    const headers = { "x-api-key": "leased-given-back" };
    const clientId = await useClockFor(headers, clock);
    const app = createApp({ clock });
    const policy = { rules: [{ name: "given-back", limit: 100, period: "1s" }], leaseLifetimeMs: 1_000 };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const send = () => app.request("https://limiter.test/", { headers }, bindings);
    await oneByOne(3, send);
    const asObject: ObjectRule = {
      name: "given-back",
      algorithm: "token-bucket",
      limit: 100,
      periodSeconds: 1,
      burst: 100,
      cost: 1,
      mode: "enforce",
      onError: "allow",
      scope: "client",
    };
    const inspect = () =>
      runInDurableObject(env.RATE_LIMITER.getByName(clientId), (limiter: RateLimiter) => limiter.inspect({ rules: [asObject] }));
    // The second request asked for 40 (2 requests at once: 40/s for 1 s), the third spent one of them.
    expect((await inspect()).rules[0]).toMatchObject({ leased: 40, remaining: 58 });
    // Past the isolate's end of the lease (a tenth of its lifetime early), not yet past the object's.
    clock.advanceMs(950);
    expect((await send()).status).toBe(200);
    // The 39 unspent came back, and the one spent counts from when it was spent, so the bucket refilled it meanwhile:
    // full again (100). The fourth request was decided by the object and brought a lease of 3 (2 requests in 950 ms):
    // 3 leased, 96 left. Told nothing of when its request was spent, the object would have held the bucket at the 60
    // the lease left of it until the give-back: 95 left.
    expect((await inspect()).rules[0]).toMatchObject({ leased: 3, remaining: 96 });
  });

  it("strand nothing of a slow rule: bursts of 12, 1.5 s apart, admit every key exactly its limit", async () => {
    const clock = new ManualClock();
    const app = createApp({ clock });
    const policy = {
      rules: [
        { name: "slow-hourly", limit: 20, period: 3600, burst: 20 },
        { name: "slow-daily", limit: 30, period: "1d" },
      ],
    };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const admitted: number[] = [];
    for (let key = 0; key < 4; key++) {
      const headers = { "x-api-key": `slow-flood-${key}` };
      await useClockFor(headers, clock);
      let count = 0;
      for (let burst = 0; burst < 5; burst++) {
        const statuses = await Promise.all(Array.from({ length: 12 }, () => app.request("https://limiter.test/", { headers }, bindings)));
        count += statuses.filter((response) => response.status === 200).length;
        clock.advanceMs(1_500);
      }
      admitted.push(count);
    }
    // 60 asked of each, 20 allowed (and the 7.5 s of refill at 20 an hour adds none).
    expect(admitted).toEqual([20, 20, 20, 20]);
  });

  it("are given back when the isolate stops spending them, though no request of the rule set follows", async () => {
    const clock = new ManualClock();
    const headers = { "x-api-key": "leased-then-quiet" };
    const clientId = await useClockFor(headers, clock);
    const app = createApp({ clock });
    const rule = { name: "paused", limit: 50, period: "1s", burst: 200 };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [rule], leaseLifetimeMs: 1_000 }) };
    const ctx = createExecutionContext();
    const burst = await Promise.all(Array.from({ length: 12 }, () => app.request("https://limiter.test/", { headers }, bindings, ctx)));
    expect(burst.every((response) => response.status === 200)).toBe(true);
    const asObject: ObjectRule = {
      ...rule,
      algorithm: "token-bucket",
      periodSeconds: 1,
      cost: 1,
      mode: "enforce",
      onError: "allow",
      scope: "client",
    };
    const inspect = async () =>
      (await runInDurableObject(env.RATE_LIMITER.getByName(clientId), (limiter: RateLimiter) => limiter.inspect({ rules: [asObject] })))
        .rules[0];
    // The first request went alone; the 11 queued behind it went as one call, whose last brought a lease of 50 (what
    // the rule refills in a lifetime): 200 - 12 - 50 left in the object.
    expect(await inspect()).toMatchObject({ leased: 50, remaining: 138 });
    // The isolate stops spending a tenth of the lifetime early; then the waitUntil of the request that brought the
    // lease gives it back on its own.
    clock.advanceMs(900);
    await waitOnExecutionContext(ctx);
    // As if no lease had been granted: 200 - 12, and 900 ms of refill at 50/s, at most the burst.
    expect(await inspect()).toMatchObject({ leased: 0, remaining: 200 });
  });

  it("take back a client's request spent from its lease when the global rule denies it", async () => {
    const clock = new ManualClock();
    await runInDurableObject(env.RATE_LIMITER.getByName(GLOBAL_OBJECT), (limiter: RateLimiter) => {
      limiter.clock = clock;
    });
    const headers = { "x-api-key": "leased-then-globally-denied" };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    const own = { name: "own-leased", limit: 5, period: "1s" };
    const policy = { rules: [own, { name: "global-tight", limit: 2, period: "1s", scope: "global" }] };
    const send = (rules: unknown) =>
      app.request("https://limiter.test/", { headers }, { ...env, RATE_LIMIT_POLICY: JSON.stringify(rules) });
    // The second request brings a lease of 2 of the client's 4 left; the third is admitted from it, then denied
    // by the global rule, which has nothing left.
    expect(await oneByOne(3, () => send(policy))).toEqual([200, 200, 429]);
    // Two admitted: the client has exactly 3 left, in its object and its lease in this isolate.
    expect(await oneByOne(4, () => send({ rules: [own] }))).toEqual([200, 200, 200, 429]);
  });

  it("take the global object out of most decisions, and refund nothing twice when it denies", async () => {
    const clock = new ManualClock();
    const globalObject = env.RATE_LIMITER.getByName(GLOBAL_OBJECT);
    await runInDurableObject(globalObject, (limiter: RateLimiter) => {
      limiter.clock = clock;
      limiter.meter = meter;
    });
    const app = createApp({ clock });
    const policy = {
      rules: [
        { name: "per-client-leased", limit: 5, period: "1s" },
        { name: "global-leased", limit: 30, period: "1s", scope: "global" },
      ],
    };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const before = meter.calls;
    const admitted: number[] = [];
    for (let client = 0; client < 10; client++) {
      // The client objects run on the same clock, unmetered: only the global object's calls are counted.
      const headers = { "x-api-key": `global-leased-${client}` };
      const identity = await identifyClient(new Headers(headers));
      if (!("clientId" in identity)) throw new Error(identity.problem);
      await runInDurableObject(env.RATE_LIMITER.getByName(identity.clientId), (limiter: RateLimiter) => {
        limiter.clock = clock;
      });
      admitted.push((await oneByOne(6, () => app.request("https://limiter.test/", { headers }, bindings))).filter((s) => s === 200).length);
    }
    // Exactly the global budget, and no client above its own.
    expect(admitted.reduce((sum, count) => sum + count, 0)).toBe(30);
    expect(Math.max(...admitted)).toBe(5);
    expect(meter.calls - before).toBeLessThan(30);
  });
});
