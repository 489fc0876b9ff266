import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type TokenBucketState, tokenBucket } from "../../src/limiter/token-bucket.ts";
import type { RuleLimits } from "../../src/limiter/types.ts";

const T0 = 1_700_000_000_000;

function run(limits: RuleLimits, steps: Array<{ atMs: number; cost: number }>) {
  let state = tokenBucket.initialState(limits, T0);
  return steps.map(({ atMs, cost }) => {
    const outcome = tokenBucket.decide(state, limits, T0 + atMs, cost);
    state = outcome.state;
    return outcome.decision;
  });
}

describe("token bucket at its edges", () => {
  const threePerTen: RuleLimits = { limit: 3, periodSeconds: 10, burst: 3 };

  it("admits exactly its capacity at once, then denies", () => {
    const decisions = run(
      threePerTen,
      [0, 0, 0, 0].map(() => ({ atMs: 0, cost: 1 })),
    );
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([2, 1, 0, 0]);
  });

  it("reports reset as seconds until full and retry-after as seconds until cost tokens exist", () => {
    const [, , third, fourth] = run(
      threePerTen,
      [0, 0, 0, 0].map(() => ({ atMs: 0, cost: 1 })),
    );
    // 3 tokens per 10 s: one token every 3.333 s, all three after 10 s.
    expect(third).toMatchObject({ allowed: true, remaining: 0, resetSeconds: 10, retryAfterSeconds: 0 });
    expect(fourth).toMatchObject({ allowed: false, remaining: 0, resetSeconds: 10, retryAfterSeconds: 4 });
  });

  it("refills fractionally: a token is whole only after its full share of the period", () => {
    const steps = [
      ...[0, 0, 0].map(() => ({ atMs: 0, cost: 1 })),
      { atMs: 3333, cost: 1 }, // 0.9999 tokens
      { atMs: 3334, cost: 1 }, // 1.0002 tokens
      { atMs: 3334, cost: 1 },
    ];
    expect(run(threePerTen, steps).map((d) => d.allowed)).toEqual([true, true, true, false, true, false]);
  });

  it("denies a cost above what remains without charging anything", () => {
    const limits: RuleLimits = { limit: 10, periodSeconds: 1, burst: 10 };
    const decisions = run(limits, [
      { atMs: 0, cost: 8 },
      { atMs: 0, cost: 3 },
      { atMs: 0, cost: 2 },
    ]);
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [false, 2],
      [true, 0],
    ]);
    expect(decisions[1]?.retryAfterSeconds).toBe(1);
  });

  it("denies a cost above capacity with a reason, however long one waits", () => {
    const limits: RuleLimits = { limit: 5, periodSeconds: 10, burst: 5 };
    const [first, later] = run(limits, [
      { atMs: 0, cost: 6 },
      { atMs: 86_400_000, cost: 6 },
    ]);
    expect(first).toMatchObject({ allowed: false, reason: "cost-exceeds-capacity", remaining: 5 });
    expect(later).toMatchObject({ allowed: false, reason: "cost-exceeds-capacity" });
    expect(first?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it("treats a clock going backwards as no time passing", () => {
    const decisions = run(threePerTen, [
      { atMs: 10_000, cost: 3 },
      { atMs: 0, cost: 1 },
      { atMs: -50_000, cost: 1 },
      { atMs: 13_334, cost: 1 },
    ]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, false, false, true]);
  });

  it("caps a huge gap at the capacity", () => {
    const decisions = run(threePerTen, [
      { atMs: 0, cost: 3 },
      { atMs: 365 * 86_400_000, cost: 3 },
      { atMs: 365 * 86_400_000, cost: 1 },
    ]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, false]);
  });

  it.each([
    { periodSeconds: 1, limit: 1 },
    { periodSeconds: 60, limit: 100 },
    { periodSeconds: 3600, limit: 1000 },
  ])("refills a whole period's limit after $periodSeconds s", ({ periodSeconds, limit }) => {
    const limits: RuleLimits = { limit, periodSeconds, burst: limit };
    const decisions = run(limits, [
      { atMs: 0, cost: limit },
      { atMs: periodSeconds * 1000 - 1, cost: limit },
      { atMs: periodSeconds * 1000, cost: limit },
    ]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, false, true]);
    expect(decisions[1]?.retryAfterSeconds).toBe(1);
  });

  it("has a burst distinct from the rate: burst 5 refilling 2 per second", () => {
    const limits: RuleLimits = { limit: 2, periodSeconds: 1, burst: 5 };
    const steps = [...Array.from({ length: 6 }, () => ({ atMs: 0, cost: 1 })), ...[1000, 1000, 1000].map((atMs) => ({ atMs, cost: 1 }))];
    expect(run(limits, steps).map((d) => d.allowed)).toEqual([true, true, true, true, true, false, true, true, false]);
  });

  it("says when it is full again", () => {
    const limits: RuleLimits = { limit: 3, periodSeconds: 10, burst: 3 };
    const spent = tokenBucket.decide(tokenBucket.initialState(limits, T0), limits, T0, 3).state;
    expect(tokenBucket.fullAtMs(spent, limits)).toBe(T0 + 10_000);
    expect(tokenBucket.fullAtMs(tokenBucket.initialState(limits, T0), limits)).toBe(T0);
  });
});

describe("token bucket properties", () => {
  const limitsArbitrary = fc.record({
    limit: fc.integer({ min: 1, max: 1000 }),
    periodSeconds: fc.integer({ min: 1, max: 3600 }),
    burstExtra: fc.integer({ min: 0, max: 1000 }),
  });
  // The object hands its algorithms a non-decreasing clock (see src/object/rate-limiter.ts), so gaps are >= 0 here;
  // time running backwards is a property of its own below.
  const stepsArbitrary = fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 20_000 }), cost: fc.integer({ min: 1, max: 50 }) }), {
    minLength: 1,
    maxLength: 200,
  });

  it("never admits more than burst + rate × elapsed in any interval", () => {
    fc.assert(
      fc.property(limitsArbitrary, stepsArbitrary, ({ limit, periodSeconds, burstExtra }, steps) => {
        const limits: RuleLimits = { limit, periodSeconds, burst: limit + burstExtra };
        let state = tokenBucket.initialState(limits, T0);
        let clockMs = T0;
        const admitted: Array<{ atMs: number; cost: number }> = [];
        for (const { gapMs, cost } of steps) {
          clockMs += gapMs;
          const outcome = tokenBucket.decide(state, limits, clockMs, cost);
          state = outcome.state;
          if (outcome.decision.allowed) admitted.push({ atMs: clockMs, cost });
        }
        const seen = admitted;
        const periodMs = periodSeconds * 1000;
        for (let i = 0; i < seen.length; i++) {
          let total = 0;
          for (let j = i; j < seen.length; j++) {
            total += seen[j]?.cost ?? 0;
            const elapsedMs = (seen[j]?.atMs ?? 0) - (seen[i]?.atMs ?? 0);
            // Integer form of total <= burst + (limit / periodMs) × elapsed.
            expect(total * periodMs).toBeLessThanOrEqual(limits.burst * periodMs + limit * elapsedMs);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("admits exactly when the tokens a reference model computes cover the cost, and denials change nothing", () => {
    fc.assert(
      fc.property(limitsArbitrary, stepsArbitrary, ({ limit, periodSeconds, burstExtra }, steps) => {
        const limits: RuleLimits = { limit, periodSeconds, burst: limit + burstExtra };
        // Reference: exact rational tokens as BigInt numerators over periodMs.
        const periodMs = BigInt(periodSeconds * 1000);
        let modelTokens = BigInt(limits.burst) * periodMs;
        let modelAtMs = T0;
        let state: TokenBucketState = tokenBucket.initialState(limits, T0);
        let clockMs = T0;
        for (const { gapMs, cost } of steps) {
          clockMs += gapMs;
          const elapsed = Math.max(0, clockMs - modelAtMs);
          modelAtMs = Math.max(modelAtMs, clockMs);
          const capacity = BigInt(limits.burst) * periodMs;
          modelTokens = modelTokens + BigInt(elapsed) * BigInt(limit);
          if (modelTokens > capacity) modelTokens = capacity;
          const shouldAdmit = modelTokens >= BigInt(cost) * periodMs;

          const outcome = tokenBucket.decide(state, limits, clockMs, cost);
          expect(outcome.decision.allowed).toBe(shouldAdmit);
          if (shouldAdmit) modelTokens -= BigInt(cost) * periodMs;
          else expect(outcome.state).toBe(state);
          state = outcome.state;
        }
      }),
      { numRuns: 300 },
    );
  });

  it("creates no tokens when time runs backwards, and counts waits from its last update", () => {
    fc.assert(
      fc.property(
        limitsArbitrary,
        stepsArbitrary,
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 50 }),
        (raw, steps, backMs, cost) => {
          const limits: RuleLimits = { limit: raw.limit, periodSeconds: raw.periodSeconds, burst: raw.limit + raw.burstExtra };
          let state = tokenBucket.initialState(limits, T0);
          let clockMs = T0;
          for (const step of steps) {
            clockMs += step.gapMs;
            state = tokenBucket.decide(state, limits, clockMs, step.cost).state;
          }
          const atLastUpdate = tokenBucket.decide(state, limits, state.updatedAtMs, cost);
          const inThePast = tokenBucket.decide(state, limits, state.updatedAtMs - backMs, cost);
          expect(inThePast.state).toEqual(atLastUpdate.state);
          expect(inThePast.decision.allowed).toBe(atLastUpdate.decision.allowed);
          expect(inThePast.decision.remaining).toBe(atLastUpdate.decision.remaining);
          // Nothing refills before the last update, so a wait counted from earlier is longer by exactly that much.
          const wait = atLastUpdate.decision.retryAfterMs;
          expect(inThePast.decision.retryAfterMs).toBe(wait === 0 ? 0 : wait + backMs);
        },
      ),
      { numRuns: 300 },
    );
  });
});
