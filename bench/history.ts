// The accuracy scenario's history check: every admission a system made, on the server's clock, against the
// token bucket's bound over every interval, not only over the whole run.

/** A scenario's limit, as the bound reads it. */
export interface RateLimit {
  limit: number;
  periodSeconds: number;
  burst: number;
}

/**
 * One admission as the Worker saw it: the decision was made somewhere between the request's arrival and the
 * moment the Worker admitted it (the object decides in between, on the same machine's clock).
 */
export interface RecordedAdmission {
  fromMs: number;
  atMs: number;
}

/** Most admissions checked interval by interval; a larger history is judged over its whole span instead. */
export const MAX_CHECKED = 5_000;

/**
 * The largest over-admission of any interval, counted conservatively: for every interval from one arrival to
 * one admission, the admissions that certainly fell inside it (arrived at or after its start, admitted at or
 * before its end) minus ⌊burst + rate × its length⌋; 0 or less is exact. Each admission costs 1. For each
 * start, one sweep over the admissions in the order they were admitted: n² steps in all.
 */
export function worstOverAdmission(admissions: readonly RecordedAdmission[], limits: RateLimit): number {
  if (admissions.length === 0) return 0;
  const periodMs = limits.periodSeconds * 1000;
  const byEnd = [...admissions].sort((a, b) => a.atMs - b.atMs);
  let worst = Number.NEGATIVE_INFINITY;
  for (const { fromMs: startMs } of admissions) {
    let inside = 0;
    for (const admission of byEnd) {
      if (admission.atMs < startMs || admission.fromMs < startMs) continue;
      inside++;
      // Whole numbers throughout: count − ⌊burst + limit × t / period⌋, with t in ms.
      const allowed = Math.floor((limits.burst * periodMs + limits.limit * (admission.atMs - startMs)) / periodMs);
      worst = Math.max(worst, inside - allowed);
    }
  }
  return worst;
}
