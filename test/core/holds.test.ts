import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createLimiter, type Limiter } from "../../src/core/create-limiter.ts";
import { limiterOnClock, policyProblemsOf, useClock } from "../client.ts";

/** A limiter on a manual clock with these keys' (and orgs') objects on it, answering every call from its objects. */
function limiterOn(policy: unknown, keys: string[], orgs: string[] = []) {
  return limiterOnClock(policy, { keys, dimensions: { org: orgs }, cacheDenials: false });
}

/** What `key` has left under `rule`, and what holds of it. */
async function stateOf(limiter: Limiter, key: string, rule: string) {
  const report = await limiter.inspect(key);
  const found = report.rules.find((each) => each.name === rule);
  if (!found) throw new Error(`no rule ${rule}`);
  return { remaining: found.remaining, held: found.held };
}

const failedLogins = {
  rules: [{ name: "failed-logins", limit: 3, period: "15m", algorithm: "fixed-window", count: "failed" }],
};

describe("holds: counts settled after the outcome", () => {
  it("keeps a failed attempt's charge and refunds a successful one's, and bounds attempts in flight", async () => {
    const { limiter } = await limiterOn(failedLogins, ["alice"]);
    const first = await limiter.limit("alice");
    expect(first.success).toBe(true);
    expect(first.hold).toMatch(/ [0-9a-f-]{36}$/);
    expect(await stateOf(limiter, "alice", "failed-logins")).toEqual({ remaining: 2, held: 1 });
    expect(await limiter.settle(first.hold, { successful: true })).toBe(true);
    expect(await stateOf(limiter, "alice", "failed-logins")).toEqual({ remaining: 3, held: 0 });
    // Settled once: a second settlement finds nothing to settle, and changes nothing.
    expect(await limiter.settle(first.hold, { successful: false })).toBe(false);
    expect(await stateOf(limiter, "alice", "failed-logins")).toEqual({ remaining: 3, held: 0 });

    // Five attempts at once, none settled yet: the three the rule allows are admitted, as if each had failed.
    const attempts = await Promise.all([1, 2, 3, 4, 5].map(() => limiter.limit("alice")));
    expect(attempts.map((attempt) => attempt.success)).toEqual([true, true, true, false, false]);
    expect(attempts[3]?.hold).toBeUndefined();
    for (const attempt of attempts.slice(0, 2)) await limiter.settle(attempt.hold, { successful: false });
    await limiter.settle(attempts[2]?.hold, { successful: true });
    expect(await stateOf(limiter, "alice", "failed-logins")).toEqual({ remaining: 1, held: 0 });
  });

  it("forgives the failures before a success under resetOnSuccess", async () => {
    const policy = {
      rules: [{ name: "consecutive", limit: 3, period: "15m", algorithm: "fixed-window", count: "failed", resetOnSuccess: true }],
    };
    const { limiter } = await limiterOn(policy, ["judy"]);
    const attempt = async (successful: boolean) => {
      const result = await limiter.limit("judy");
      if (result.success) await limiter.settle(result.hold, { successful });
      return result.success;
    };
    expect([await attempt(false), await attempt(false), await attempt(true)]).toEqual([true, true, true]);
    // Forgiven: three more failures fit, and the fourth is denied.
    expect([await attempt(false), await attempt(false), await attempt(false), await attempt(false)]).toEqual([true, true, true, false]);
  });

  it("forgives no failure when another object denies the call", async () => {
    const policy = {
      rules: [
        { name: "consecutive", limit: 3, period: "15m", algorithm: "fixed-window", count: "failed", resetOnSuccess: true },
        { name: "everyone", key: "global", limit: 2, period: "1h", algorithm: "fixed-window" },
      ],
    };
    const { limiter } = await limiterOnClock(policy, { keys: ["kim"] });
    for (let i = 0; i < 2; i++) await limiter.settle((await limiter.limit("kim")).hold, { successful: false });
    // The global rule denies the third: its held charge is refunded, and the two failures stay.
    expect((await limiter.limit("kim")).success).toBe(false);
    expect(await stateOf(limiter, "kim", "consecutive")).toEqual({ remaining: 1, held: 0 });
  });

  it("lets a settlement admit the next call at once, though a denial before it was cached", async () => {
    const policy = { rules: [{ name: "pending", limit: 2, period: "15m", algorithm: "fixed-window", count: "failed" }] };
    const { limiter } = await limiterOnClock(policy, { keys: ["lee"] });
    const [first, second] = [await limiter.limit("lee"), await limiter.limit("lee")];
    expect((await limiter.limit("lee")).success).toBe(false);
    await limiter.settle(first.hold, { successful: true });
    await limiter.settle(second.hold, { successful: true });
    expect((await limiter.limit("lee")).success).toBe(true);
  });

  it("refuses to hold under a rule that cannot, naming it", async () => {
    const policy = { rules: [{ name: "sliding", limit: 2, period: "1m", algorithm: "sliding-window-log" }] };
    const { limiter } = await limiterOnClock(policy, { keys: ["max"] });
    await expect(limiter.limit("max", { hold: true })).rejects.toThrow(
      'limit(): hold: rule "sliding" is a sliding-window-log, which cannot hold a charge until it is settled',
    );
  });

  it("counts only successes under count: successful", async () => {
    const policy = { rules: [{ name: "signups", limit: 2, period: "1h", count: "successful" }] };
    const { limiter } = await limiterOn(policy, ["bob"]);
    for (const successful of [false, false, false, true, true]) {
      const result = await limiter.limit("bob");
      expect(result.success).toBe(true);
      await limiter.settle(result.hold, { successful });
    }
    expect((await limiter.limit("bob")).success).toBe(false);
  });

  it("replaces the estimate with the actual cost, and lets a bucket owe what was settled above it", async () => {
    const policy = { rules: [{ name: "tokens", limit: 100, period: "1h", algorithm: "token-bucket" }] };
    const { limiter } = await limiterOn(policy, ["carol"]);
    const estimated = await limiter.limit("carol", { hold: true, cost: 50 });
    expect(await stateOf(limiter, "carol", "tokens")).toEqual({ remaining: 50, held: 50 });
    await limiter.settle(estimated.hold, { cost: 20 });
    expect(await stateOf(limiter, "carol", "tokens")).toEqual({ remaining: 80, held: 0 });
    const over = await limiter.limit("carol", { hold: true, cost: 60 });
    await limiter.settle(over.hold, { cost: 110 });
    // 80 - 110: the bucket owes 30, and refills them (30 of 100 an hour) before it admits a single unit.
    const denied = await limiter.limit("carol");
    expect(denied.success).toBe(false);
    expect(denied.retryAfterMs).toBe(31 * 36_000);
    const refunded = await limiter.limit("carol", { hold: true, cost: 1 }).catch(() => undefined);
    expect(refunded?.success).toBe(false);
  });

  it("refunds a hold exactly however long it was held: as if the call had never been made", async () => {
    const policy = { rules: [{ name: "steady", limit: 10, period: "1m", algorithm: "token-bucket" }] };
    const { limiter, clock } = await limiterOn(policy, ["held", "never"]);
    const calls = async (key: string, count: number) => {
      for (let i = 0; i < count; i++) await limiter.limit(key);
    };
    // The same calls for both keys, but "held" also makes one held call that is refunded minutes later.
    await calls("held", 4);
    await calls("never", 4);
    const held = await limiter.limit("held", { hold: true, cost: 3 });
    clock.advanceSeconds(20);
    await calls("held", 5);
    await calls("never", 5);
    clock.advanceSeconds(300); // both full again long before the refund
    await calls("held", 2);
    await calls("never", 2);
    expect(await stateOf(limiter, "held", "steady")).toEqual({ remaining: 5, held: 3 });
    await limiter.settle(held.hold, { cost: "refund" });
    expect(await stateOf(limiter, "held", "steady")).toEqual(await stateOf(limiter, "never", "steady"));
    expect((await stateOf(limiter, "never", "steady")).remaining).toBe(8);
  });

  it.each([
    ["a slow rule, 20 an hour", { limit: 20, period: "1h", periodSeconds: 3600 }],
    ["a fast rule, 10 a minute", { limit: 10, period: "1m", periodSeconds: 60 }],
  ])("admits after a late refund exactly what a key that never made the call has, no more and no less: %s", async (_, limits) => {
    // Held for longer than the rule takes to refill, and settled within holdTtlSeconds.
    const policy = {
      holdTtlSeconds: 3 * limits.periodSeconds,
      rules: [{ name: "exact", limit: limits.limit, period: limits.period, algorithm: "token-bucket" }],
    };
    const { limiter, clock } = await limiterOn(policy, ["held-both-ways", "never-both-ways"]);
    const both = async (count: number) => {
      for (let i = 0; i < count; i++) for (const key of ["held-both-ways", "never-both-ways"]) await limiter.limit(key);
    };
    await both(limits.limit - 5);
    const held = await limiter.limit("held-both-ways", { hold: true, cost: 3 });
    clock.advanceSeconds((2 * limits.periodSeconds) / limits.limit);
    await both(2);
    clock.advanceSeconds(2 * limits.periodSeconds); // full again, but for what the hold still holds
    await both(2);
    expect(await stateOf(limiter, "held-both-ways", "exact")).toEqual({ remaining: limits.limit - 5, held: 3 });
    await limiter.settle(held.hold, { cost: "refund" });
    const admittedUntilDenied = async (key: string) => {
      let admitted = 0;
      while ((await limiter.limit(key)).success) admitted++;
      return admitted;
    };
    expect(await admittedUntilDenied("held-both-ways")).toBe(limits.limit - 2);
    expect(await admittedUntilDenied("never-both-ways")).toBe(limits.limit - 2);
  });

  it("keeps a hold through the object's eviction, and lets one never settled stand as charged after holdTtlSeconds", async () => {
    const policy = { holdTtlSeconds: 60, rules: [{ name: "slow", limit: 5, period: "1d", count: "failed" }] };
    const { limiter, clock, stubs } = await limiterOn(policy, ["dave"]);
    const kept = await limiter.limit("dave");
    const lapsed = await limiter.limit("dave");
    const stub = stubs[0] as DurableObjectStub<import("../../src/object/rate-limiter.ts").RateLimiter>;
    await evictDurableObject(stub);
    await useClock(stub, clock);
    expect(await stateOf(limiter, "dave", "slow")).toEqual({ remaining: 3, held: 2 });
    expect(await limiter.settle(kept.hold, { successful: true })).toBe(true);
    clock.advanceSeconds(61);
    expect(await limiter.settle(lapsed.hold, { successful: true })).toBe(false);
    expect(await stateOf(limiter, "dave", "slow")).toEqual({ remaining: 4, held: 0 });
  });

  it("refunds a held charge in the client's object when the org's object denies the call", async () => {
    const policy = {
      dimensions: { org: { from: "caller" } },
      rules: [
        { name: "per-user", limit: 5, period: "1h", count: "failed" },
        { name: "per-org", key: "org", limit: 1, period: "1h", count: "failed" },
      ],
    };
    const { limiter } = await limiterOn(policy, ["erin", "frank"], ["acme"]);
    const admitted = await limiter.limit("erin", { keys: { org: "acme" } });
    expect(admitted.success).toBe(true);
    expect(admitted.hold?.split(",")).toHaveLength(2);
    const denied = await limiter.limit("frank", { keys: { org: "acme" } });
    expect(denied.success).toBe(false);
    expect(await stateOf(limiter, "frank", "per-user")).toEqual({ remaining: 5, held: 0 });
    await limiter.settle(admitted.hold, { successful: true });
    expect((await limiter.limit("frank", { keys: { org: "acme" } })).success).toBe(true);
  });

  it("refuses what it cannot settle, naming the option", async () => {
    const { limiter } = await limiterOn(failedLogins, ["gina"]);
    const result = await limiter.limit("gina");
    await expect(limiter.settle("not a hold")).rejects.toThrow("settle(): hold must be the hold of a result of this limiter's limit()");
    await expect(limiter.settle(result.hold, { cost: 1.5 })).rejects.toThrow('settle(): cost must be "refund" or a whole number');
    await expect(limiter.settle(result.hold, { successful: "yes" as never })).rejects.toThrow("settle(): successful must be true or false");
    const other = createLimiter({ namespace: env.RATE_LIMITER, policy: failedLogins, prefix: "holds-elsewhere" });
    await expect(other.settle(result.hold)).rejects.toThrow("hold must be the hold of a result of this limiter's limit()");
    expect(await limiter.settle(undefined)).toBe(true);
  });
});

describe("count and holdTtlSeconds in the policy", () => {
  const problemsOf = policyProblemsOf;

  it("names a count its rule's algorithm cannot hold, and a hold time out of range", () => {
    expect(problemsOf({ rules: [{ name: "r", limit: 5, period: "1m", algorithm: "sliding-window-log", count: "failed" }] })).toEqual([
      "rules[0].count: needs an algorithm that can hold a charge until the response settles it (token-bucket, gcra, leaky-bucket, fixed-window), not sliding-window-log",
    ]);
    expect(problemsOf({ rules: [{ name: "r", limit: 5, period: "1m", count: "some" }] })).toEqual([
      'rules[0].count: must be "all", "failed" or "successful"',
    ]);
    expect(problemsOf({ rules: [{ name: "r", limit: 5, period: "1m", resetOnSuccess: true }] })).toEqual([
      'rules[0].resetOnSuccess: needs count: "failed": only a rule that waits for the outcome knows a success',
    ]);
    expect(problemsOf({ holdTtlSeconds: 0, rules: [{ name: "r", limit: 5, period: "1m" }] })[0]).toMatch(/^holdTtlSeconds: /);
  });
});
