import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { worstOverAdmission } from "../../bench/history.ts";

/** The same, the slow way: every pair of admissions as an interval. */
function naive(times: number[], limits: { limit: number; periodSeconds: number; burst: number }): number {
  const sorted = [...times].sort((a, b) => a - b);
  let worst = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i; j < sorted.length; j++) {
      const lengthMs = (sorted[j] ?? 0) - (sorted[i] ?? 0);
      worst = Math.max(worst, j - i + 1 - Math.floor(limits.burst + (limits.limit * lengthMs) / (limits.periodSeconds * 1000)));
    }
  }
  return sorted.length === 0 ? 0 : worst;
}

describe("the bench's history check", () => {
  it("finds the worst interval of a history, as checking every pair does", () => {
    const limits = fc.record({
      limit: fc.integer({ min: 1, max: 100 }),
      periodSeconds: fc.integer({ min: 1, max: 60 }),
      burst: fc.integer({ min: 1, max: 100 }),
    });
    const times = fc.array(fc.integer({ min: 0, max: 120_000 }), { maxLength: 120 });
    fc.assert(
      fc.property(times, limits, (history, bound) => {
        expect(worstOverAdmission(history, bound)).toBe(naive(history, bound));
      }),
      { numRuns: 500 },
    );
  });

  it("finds an exact history at the bound, and counts what goes over it", () => {
    const limits = { limit: 10, periodSeconds: 10, burst: 10 };
    // A full burst at once, then one a second for 9 s: exactly the bound. Five more at 9 s are five over it.
    const spread = [...Array(10).fill(0), ...Array.from({ length: 9 }, (_, i) => (i + 1) * 1000)];
    expect(worstOverAdmission(spread, limits)).toBeLessThanOrEqual(0);
    expect(worstOverAdmission([...spread, ...Array(5).fill(9_000)], limits)).toBe(5);
  });
});
