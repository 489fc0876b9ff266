// The accuracy scenario's history check: every admission a system made, on the server's clock, against the
// token bucket's bound over every interval, not only over the whole run.

/** A scenario's limit, as the bound reads it. */
export interface RateLimit {
  limit: number;
  periodSeconds: number;
  burst: number;
}

/**
 * The largest over-admission of any interval of the history: max over i ≤ j of the admissions in
 * [t_i, t_j] minus ⌊burst + rate × (t_j − t_i)⌋; 0 or less is exact. Each admission costs 1. In one pass:
 * with everything multiplied by the period in ms it is whole numbers, and the best start for each end is
 * the best of the starts before it.
 */
export function worstOverAdmission(admittedAtMs: readonly number[], limits: RateLimit): number {
  const sorted = [...admittedAtMs].sort((a, b) => a - b);
  const periodMs = limits.periodSeconds * 1000;
  let bestStart = Number.NEGATIVE_INFINITY;
  let worst = Number.NEGATIVE_INFINITY;
  sorted.forEach((atMs, j) => {
    // Starting at admission j: −j × periodMs + limit × t_j (relative to the first, to keep the numbers small).
    const relativeMs = atMs - (sorted[0] ?? 0);
    bestStart = Math.max(bestStart, -j * periodMs + limits.limit * relativeMs);
    const excess = (j + 1) * periodMs - limits.limit * relativeMs + bestStart - limits.burst * periodMs;
    worst = Math.max(worst, excess);
  });
  // count − ⌊burst + rate × t⌋ = ⌈count − burst − rate × t⌉ for a whole count.
  return sorted.length === 0 ? 0 : Math.ceil(worst / periodMs) + 0; // + 0 turns −0 into 0
}
