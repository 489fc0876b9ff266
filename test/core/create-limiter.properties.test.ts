import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createLimiter } from "../../src/core/create-limiter.ts";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { algorithmNames } from "../../src/limiter/registry.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { useClock } from "../client.ts";
import { type Admission, bounds } from "../history-checker.ts";
import { ManualClock } from "../manual-clock.ts";

const WITH_BURST = new Set(["token-bucket", "gcra", "leaky-bucket"]);

const ruleArbitrary = fc.record({
  algorithm: fc.constantFrom(...algorithmNames),
  limit: fc.integer({ min: 1, max: 20 }),
  periodSeconds: fc.integer({ min: 1, max: 30 }),
  extra: fc.integer({ min: 0, max: 10 }),
});

/** A moment of traffic: the clock moves on, then calls arrive together, each with its own cost. */
const stepArbitrary = fc.record({
  gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3_000 })),
  costs: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 12 }),
});

let runs = 0;

describe("createLimiter().limit() against the history checker", () => {
  it("never admits more than the rule's bound over any interval, whatever calls arrive together and at what cost", async () => {
    await fc.assert(
      fc.asyncProperty(ruleArbitrary, fc.array(stepArbitrary, { minLength: 1, maxLength: 12 }), async (drawn, steps) => {
        runs += 1;
        const prefix = `core-history-${runs}`;
        const burst = WITH_BURST.has(drawn.algorithm) ? drawn.limit + drawn.extra : drawn.limit;
        const rule = {
          name: "history",
          algorithm: drawn.algorithm,
          limit: drawn.limit,
          period: drawn.periodSeconds,
          ...(WITH_BURST.has(drawn.algorithm) ? { burst } : {}),
        };
        const clock = new ManualClock();
        await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, await UNKEYED_HASHER.clientId("history-key"))), clock);
        const limiter = createLimiter({ namespace: env.RATE_LIMITER, policy: { rules: [rule] }, prefix, clock });
        const admitted: Admission[] = [];
        for (const { gapMs, costs } of steps) {
          clock.advanceMs(gapMs);
          const atMs = clock.nowMs();
          // Calls that cannot fit the bucket at all are refused whatever its state: only those that can are drawn.
          const fitting = costs.filter((cost) => cost <= burst);
          const results = await Promise.all(fitting.map((cost) => limiter.limit("history-key", { cost })));
          results.forEach((result, index) => {
            if (result.success) admitted.push({ atMs, cost: fitting[index] as number });
          });
        }
        bounds[drawn.algorithm](admitted, { limit: drawn.limit, periodSeconds: drawn.periodSeconds, burst });
      }),
      { numRuns: 40 },
    );
    expect(runs).toBeGreaterThanOrEqual(40);
  });

  it("admits exactly what the bound allows under a flood, leases and all: never less either", async () => {
    runs += 1;
    const prefix = `core-flood-${runs}`;
    // 10 a second, burst 10: fast enough that the isolate is leased units (at least 2 a lease lifetime of 1 s).
    const policy = { rules: [{ name: "flood", limit: 10, period: "1s", burst: 10 }] };
    const clock = new ManualClock();
    await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, await UNKEYED_HASHER.clientId("flood-key"))), clock);
    const limiter = createLimiter({ namespace: env.RATE_LIMITER, policy, prefix, clock });
    let admitted = 0;
    let leased = 0;
    for (let step = 0; step < 20; step++) {
      // Every 250 ms, 8 calls at once: far more than the 2.5 a step refills.
      if (step > 0) clock.advanceMs(250);
      const results = await Promise.all(Array.from({ length: 8 }, () => limiter.limit("flood-key")));
      admitted += results.filter((result) => result.success).length;
      leased += results.filter((result) => result.leased).length;
    }
    // burst + rate × elapsed: 10 + 10 × 4.75 s = 57.5, so exactly 57 may pass, and an exact limiter passes all 57.
    expect(admitted).toBe(57);
    expect(leased).toBeGreaterThan(0);
  });

  it("admits exactly what a slow rule (20 an hour) allows, no more and no fewer, flood after flood", async () => {
    runs += 1;
    const prefix = `core-slow-${runs}`;
    const clock = new ManualClock();
    await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, await UNKEYED_HASHER.clientId("slow-key"))), clock);
    const limiter = createLimiter({
      namespace: env.RATE_LIMITER,
      policy: { rules: [{ name: "slow", limit: 20, period: "1h" }] },
      prefix,
      clock,
    });
    const flood = async () =>
      (await Promise.all(Array.from({ length: 30 }, () => limiter.limit("slow-key")))).filter((r) => r.success).length;
    expect(await flood()).toBe(20);
    // One more refills every 3 minutes: none a millisecond early, exactly one on time.
    clock.advanceMs(180_000 - 1);
    expect(await flood()).toBe(0);
    clock.advanceMs(1);
    expect(await flood()).toBe(1);
    clock.advanceMs(3_600_000);
    expect(await flood()).toBe(20);
  });
});
