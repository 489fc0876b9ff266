import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type RecordedAdmission, worstOverAdmission } from "../../bench/history.ts";

/** The same, the slow way: every arrival as a start, every admission as an end, each interval counted afresh. */
function naive(admissions: RecordedAdmission[], limits: { limit: number; periodSeconds: number; burst: number }): number {
  let worst = Number.NEGATIVE_INFINITY;
  for (const start of admissions) {
    for (const end of admissions) {
      if (end.atMs < start.fromMs) continue;
      const inside = admissions.filter((a) => a.fromMs >= start.fromMs && a.atMs <= end.atMs).length;
      if (inside === 0) continue;
      worst = Math.max(
        worst,
        inside - Math.floor(limits.burst + (limits.limit * (end.atMs - start.fromMs)) / (limits.periodSeconds * 1000)),
      );
    }
  }
  return admissions.length === 0 ? 0 : worst;
}

const admission = fc
  .record({ fromMs: fc.integer({ min: 0, max: 60_000 }), latencyMs: fc.integer({ min: 0, max: 200 }) })
  .map(({ fromMs, latencyMs }) => ({ fromMs, atMs: fromMs + latencyMs }));

describe("the bench's history check", () => {
  it("finds the worst interval of a history, as counting every interval afresh does", () => {
    const limits = fc.record({
      limit: fc.integer({ min: 1, max: 100 }),
      periodSeconds: fc.integer({ min: 1, max: 60 }),
      burst: fc.integer({ min: 1, max: 100 }),
    });
    fc.assert(
      fc.property(fc.array(admission, { maxLength: 60 }), limits, (history, bound) => {
        expect(worstOverAdmission(history, bound)).toBe(naive(history, bound));
      }),
      { numRuns: 300 },
    );
  });

  it("finds an exact history at the bound, and counts what goes over it", () => {
    const limits = { limit: 10, periodSeconds: 10, burst: 10 };
    const at = (ms: number) => ({ fromMs: ms, atMs: ms });
    // A full burst at once, then one a second for 9 s: exactly the bound. Five more at 9 s are five over it.
    const spread = [...Array.from({ length: 10 }, () => at(0)), ...Array.from({ length: 9 }, (_, i) => at((i + 1) * 1000))];
    expect(worstOverAdmission(spread, limits)).toBe(0);
    expect(worstOverAdmission([...spread, ...Array.from({ length: 5 }, () => at(9_000))], limits)).toBe(5);
  });

  it("does not count an admission whose decision may lie outside the interval", () => {
    const limits = { limit: 1, periodSeconds: 1, burst: 1 };
    // Two admissions reported 500 ms apart, but the first arrived 600 ms before it was admitted: its decision may
    // have been a whole second before the second's, which the bound allows.
    expect(
      worstOverAdmission(
        [
          { fromMs: 0, atMs: 600 },
          { fromMs: 1_000, atMs: 1_100 },
        ],
        limits,
      ),
    ).toBeLessThanOrEqual(0);
  });
});
