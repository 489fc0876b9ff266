import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createLimiter } from "../../src/core/create-limiter.ts";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { isolateCounters } from "../../src/metrics/decision-counters.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { limiterOnClock, policyProblemsOf, useClock } from "../client.ts";

const ladder = {
  rules: [{ name: "guesses", limit: 2, period: "1m", algorithm: "fixed-window", block: { seconds: [60, 600, 3600] } }],
};

describe("penalty boxes", () => {
  it("blocks a key that exhausts its rule for the first step, then longer when it comes straight back", async () => {
    const { limiter, clock } = await limiterOnClock(ladder, { keys: ["mallory"], cacheDenials: false });
    const call = () => limiter.limit("mallory");
    expect([(await call()).success, (await call()).success]).toEqual([true, true]);
    const exhausted = await call();
    expect(exhausted.success).toBe(false);
    expect(exhausted.retryAfterMs).toBe(60_000);
    expect(exhausted.rules[0]).toMatchObject({ blocked: true, remaining: 0 });
    // A new window would admit it, but the block has 10 s to go.
    clock.advanceSeconds(50);
    expect((await call()).retryAfterMs).toBe(10_000);
    clock.advanceSeconds(10);
    expect([(await call()).success, (await call()).success]).toEqual([true, true]);
    // Back within the 60 s block's own length after it ended: the next step, 600 s.
    expect((await call()).retryAfterMs).toBe(600_000);
    expect((await limiter.inspect("mallory")).blockedRules).toEqual({ guesses: clock.nowMs() + 600_000 });
  });

  it("starts a key again at the bottom once it has stayed within its limit for the top step's length", async () => {
    const { limiter, clock } = await limiterOnClock(ladder, { keys: ["oscar"], cacheDenials: false });
    const exhaust = async () => {
      while ((await limiter.limit("oscar")).success);
    };
    await exhaust();
    clock.advanceSeconds(60 + 3600 + 1);
    await exhaust();
    expect((await limiter.limit("oscar")).retryAfterMs).toBe(60_000);
  });

  it("keeps a block through the object's eviction, and answers it from the isolate's cache without asking again", async () => {
    const { limiter, clock, stubs, prefix } = await limiterOnClock(ladder, { keys: ["peggy"] });
    while ((await limiter.limit("peggy")).success);
    const stub = stubs[0] as (typeof stubs)[number];
    await evictDurableObject(stub);
    await useClock(stub, clock);
    clock.advanceSeconds(30);
    const fromCache = await limiter.limit("peggy");
    expect(fromCache.success).toBe(false);
    expect(fromCache.retryAfterMs).toBe(30_000);
    // Asked without the cache, the evicted object says so too: the block was stored.
    const uncached = createLimiter({ namespace: env.RATE_LIMITER, policy: ladder, prefix, clock, cacheDenials: false });
    const fromObject = await uncached.limit("peggy");
    expect(fromObject.retryAfterMs).toBe(30_000);
    expect(fromObject.rules[0]?.blocked).toBe(true);
  });

  it("counts every denial towards after, the cached ones too, and never one that only attempts in flight caused", async () => {
    const policy = {
      rules: [{ name: "thrice", limit: 2, period: "1m", algorithm: "fixed-window", count: "failed", block: { seconds: [600], after: 3 } }],
    };
    const { limiter } = await limiterOnClock(policy, { keys: ["nina", "omar"] });
    // Three attempts at once, two in flight: the third is denied by charges that are then refunded. No strike.
    const attempts = await Promise.all([limiter.limit("omar"), limiter.limit("omar"), limiter.limit("omar")]);
    expect(attempts.map((attempt) => attempt.success)).toEqual([true, true, false]);
    for (const attempt of attempts) await limiter.settle(attempt.hold, { successful: true });
    expect((await limiter.limit("omar")).success).toBe(true);
    // Denied three times in a minute, the cache on: the third blocks.
    for (let i = 0; i < 2; i++) await limiter.settle((await limiter.limit("nina")).hold, { successful: false });
    const waits = [];
    for (let i = 0; i < 3; i++) waits.push((await limiter.limit("nina")).retryAfterMs);
    expect(waits[2]).toBe(600_000);
  });

  it("blocks a key by hand under every rule until lifted, and lifts the penalty boxes' blocks too", async () => {
    const { limiter } = await limiterOnClock(ladder, { keys: ["trent"] });
    await limiter.block("trent", { seconds: 3600 });
    const blocked = await limiter.limit("trent");
    expect(blocked.success).toBe(false);
    expect(blocked.retryAfterMs).toBe(3_600_000);
    expect((await limiter.inspect("trent")).blockedUntilMs).not.toBeNull();
    await limiter.unblock("trent");
    expect((await limiter.limit("trent")).success).toBe(true);
    expect((await limiter.limit("trent")).success).toBe(true);
    expect((await limiter.limit("trent")).retryAfterMs).toBe(60_000);
    await limiter.unblock("trent");
    expect((await limiter.inspect("trent")).blockedRules).toEqual({});
    await expect(limiter.block("trent", { seconds: 0 })).rejects.toThrow("block(): seconds must be a whole number from 1 to 2592000");
  });
});

describe("blocked keys in the metrics", () => {
  it("tells the isolate's counters of each key found blocked and each blocked by hand, with when its block ends", async () => {
    const { limiter, clock, prefix } = await limiterOnClock(ladder, { keys: ["boxed", "by-hand"], metrics: env });
    isolateCounters.drainEnds();
    while ((await limiter.limit("boxed")).success);
    await limiter.block("by-hand", { seconds: 120 });
    const [boxed, byHand] = await Promise.all(["boxed", "by-hand"].map((key) => UNKEYED_HASHER.clientId(key)));
    expect(isolateCounters.drainEnds().blocks).toEqual([
      { object: objectNameOf(prefix, byHand as string), untilMs: clock.nowMs() + 120_000 },
      { object: objectNameOf(prefix, boxed as string), untilMs: clock.nowMs() + 60_000 },
    ]);
  });
});

describe("block in the policy", () => {
  const problemsOf = policyProblemsOf;

  it("names what is wrong with a ladder", () => {
    const rule = { name: "r", limit: 5, period: "1m" };
    expect(problemsOf({ rules: [{ ...rule, block: { seconds: [600, 60] } }] })).toEqual([
      "rules[0].block.seconds: must not get shorter: each step of the ladder lasts at least as long as the one before",
    ]);
    expect(problemsOf({ rules: [{ ...rule, block: { seconds: [] } }] })).toEqual(["rules[0].block.seconds: must list 1 to 10 durations"]);
    expect(problemsOf({ rules: [{ ...rule, mode: "shadow", block: { seconds: [60] } }] })).toEqual([
      "rules[0].block: is for an enforcing rule: a shadow rule never blocks",
    ]);
    expect(problemsOf({ rules: [{ ...rule, key: "global", block: { seconds: [60] } }] })).toEqual([
      "rules[0].block: would block every client at once: give it to a rule of the client or of a dimension",
    ]);
    expect(problemsOf({ rules: [{ ...rule, block: { seconds: [60], after: 0 } }] })).toEqual([
      "rules[0].block.after: must be an integer from 1 to 1000",
    ]);
  });
});
