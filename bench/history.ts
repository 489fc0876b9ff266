// The accuracy scenarios' history checks: every admission a system made, on the server's clock, against the
// token bucket's bound over every interval, not only over the whole run; and every denial, against what that bound
// explains.

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

/**
 * Whether a token bucket that starts full and refills at `limits`' rate explains each denial of one key: at some
 * moment the denial may have been decided (from its arrival to its answer), the admissions that may have fallen in
 * some interval ending then had already reached ⌊burst + rate × its length⌋, so less than 1 was left. Counted
 * generously (an admission counts wherever its decision may lie), so a denial it does not explain is one that no
 * order of the decisions explains: budget the limiter left unspent. The admissions are sorted once; each denial then
 * takes one sweep per moment worth trying (its arrival, and each admission's arrival until its answer).
 */
export function denialExplainer(admissions: readonly RecordedAdmission[], limits: RateLimit): (denial: RecordedAdmission) => boolean {
  const periodMs = limits.periodSeconds * 1000;
  const latestFirst = [...admissions].sort((a, b) => b.atMs - a.atMs);
  // count ≥ ⌊(burst × period + limit × length) / period⌋, in whole numbers.
  const reachesBound = (count: number, lengthMs: number) => limits.burst * periodMs + limits.limit * lengthMs < (count + 1) * periodMs;
  const emptyAt = (atMs: number) => {
    let count = 0;
    for (const admission of latestFirst) {
      if (admission.fromMs > atMs) continue;
      count++;
      // An admission still in flight at `atMs` counts for any interval that ends then, the shortest included.
      if (reachesBound(count, atMs - Math.min(admission.atMs, atMs))) return true;
    }
    return false;
  };
  return (denial) =>
    emptyAt(denial.fromMs) ||
    admissions.some((admission) => admission.fromMs > denial.fromMs && admission.fromMs <= denial.atMs && emptyAt(admission.fromMs));
}
