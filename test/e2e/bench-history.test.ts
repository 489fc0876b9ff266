import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { denialExplainer, type RecordedAdmission, worstOverAdmission } from "../../bench/history.ts";

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

  it("explains a denial as counting every interval and every moment afresh does", () => {
    const limits = fc.record({
      limit: fc.integer({ min: 1, max: 20 }),
      periodSeconds: fc.integer({ min: 1, max: 2 }),
      burst: fc.integer({ min: 1, max: 6 }),
    });
    const short = fc
      .record({ fromMs: fc.integer({ min: 0, max: 300 }), latencyMs: fc.integer({ min: 0, max: 40 }) })
      .map(({ fromMs, latencyMs }) => ({ fromMs, atMs: fromMs + latencyMs }));
    fc.assert(
      fc.property(fc.array(short, { maxLength: 12 }), short, limits, (history, denial, bound) => {
        expect(denialExplainer(history, bound)(denial)).toBe(explainsNaively(denial, history, bound));
      }),
      { numRuns: 200 },
    );
  });

  it("explains every denial of an exact token bucket, whenever between arrival and answer it decided", () => {
    const request = fc.record({
      fromMs: fc.integer({ min: 0, max: 5_000 }),
      decidedAfterMs: fc.integer({ min: 0, max: 100 }),
      answeredAfterMs: fc.integer({ min: 0, max: 100 }),
    });
    const limits = fc.record({
      limit: fc.integer({ min: 1, max: 10 }),
      periodSeconds: fc.constant(1),
      burst: fc.integer({ min: 1, max: 5 }),
    });
    fc.assert(
      fc.property(fc.array(request, { maxLength: 80 }), limits, (requests, bound) => {
        const { admissions, denials } = tokenBucket(requests, bound, bound.burst);
        const explains = denialExplainer(admissions, bound);
        for (const denial of denials) expect(explains(denial)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("finds the denial that a token left unspent causes", () => {
    const limits = { limit: 1, periodSeconds: 1, burst: 2 };
    // One request every 10 ms, decided on arrival, for 100 ms (a tenth of a token's refill): an exact bucket admits the
    // first two, one that starts a token short the first only, and none of its denials has a bound to explain it.
    const requests = Array.from({ length: 10 }, (_, i) => ({ fromMs: i * 10, decidedAfterMs: 0, answeredAfterMs: 0 }));
    const exact = tokenBucket(requests, limits, 2);
    expect(exact.denials.every(denialExplainer(exact.admissions, limits))).toBe(true);
    const short = tokenBucket(requests, limits, 1);
    expect(short.admissions).toHaveLength(1);
    expect(short.denials.filter((denial) => !denialExplainer(short.admissions, limits)(denial))).toHaveLength(9);
  });
});

/** The same, the slow way: every millisecond a denial may have been decided at, and every interval ending then. */
function explainsNaively(
  denial: RecordedAdmission,
  admissions: RecordedAdmission[],
  limits: { limit: number; periodSeconds: number; burst: number },
): boolean {
  for (let atMs = denial.fromMs; atMs <= denial.atMs; atMs++) {
    for (let startMs = 0; startMs <= atMs; startMs++) {
      const inside = admissions.filter((a) => a.atMs >= startMs && a.fromMs <= atMs).length;
      if (inside >= Math.floor(limits.burst + (limits.limit * (atMs - startMs)) / (limits.periodSeconds * 1000))) return true;
    }
  }
  return false;
}

/**
 * An exact token bucket, full at 0 but for `startTokens`, deciding each request at its arrival plus `decidedAfterMs`
 * and answering it `answeredAfterMs` later: what it admitted and denied, as the server records them.
 */
function tokenBucket(
  requests: Array<{ fromMs: number; decidedAfterMs: number; answeredAfterMs: number }>,
  limits: { limit: number; periodSeconds: number; burst: number },
  startTokens: number,
): { admissions: RecordedAdmission[]; denials: RecordedAdmission[] } {
  const periodMs = limits.periodSeconds * 1000;
  // Tokens × period in ms, so that the refill stays a whole number.
  let scaled = startTokens * periodMs;
  let lastMs = 0;
  const admissions: RecordedAdmission[] = [];
  const denials: RecordedAdmission[] = [];
  const byDecision = requests
    .map((request) => ({ ...request, decidedMs: request.fromMs + request.decidedAfterMs }))
    .sort((a, b) => a.decidedMs - b.decidedMs);
  for (const { fromMs, decidedMs, answeredAfterMs } of byDecision) {
    scaled = Math.min(limits.burst * periodMs, scaled + limits.limit * (decidedMs - lastMs));
    lastMs = decidedMs;
    const recorded = { fromMs, atMs: decidedMs + answeredAfterMs };
    if (scaled >= periodMs) {
      scaled -= periodMs;
      admissions.push(recorded);
    } else {
      denials.push(recorded);
    }
  }
  return { admissions, denials };
}
