/** Time arithmetic shared by the algorithms: whole milliseconds in, whole seconds (rounded up) out. */

export const MS_PER_SECOND = 1000;

/** The rule's period in ms. */
export function periodMsOf(limits: { periodSeconds: number }): number {
  return limits.periodSeconds * MS_PER_SECOND;
}

/** Whole seconds, rounded up, for a wait of `ms` (0 when there is nothing to wait for). */
export function ceilSeconds(ms: number): number {
  return ms <= 0 ? 0 : Math.ceil(ms / MS_PER_SECOND);
}

/**
 * Ms until `units` (in 1/periodMs of a unit, as the token and leaky buckets count) have
 * flowed at `limit` per ms, starting `lagMs` from now: a state dated after now (stored
 * ahead by a reservation, loaded after a restart) neither refills nor leaks until its date.
 */
export function msToFlow(units: number, limits: { limit: number }, lagMs: number): number {
  return units <= 0 ? 0 : lagMs + Math.ceil(units / limits.limit);
}

/** `now` as a whole ms, never before `sinceMs`: time running backwards counts as no time at all. */
export function clampNow(nowMs: number, sinceMs: number): number {
  return Math.max(Math.floor(nowMs), sinceMs);
}

/**
 * The wait before a denied request could be admitted, exact in ms (what a cache of
 * denials may rely on) and as the whole seconds of Retry-After, at least 1.
 */
export function retryAfter(allowed: boolean, waitMs: number): { retryAfterMs: number; retryAfterSeconds: number } {
  if (allowed) return { retryAfterMs: 0, retryAfterSeconds: 0 };
  return { retryAfterMs: Math.max(0, waitMs), retryAfterSeconds: Math.max(1, ceilSeconds(waitMs)) };
}

/**
 * `units` counted in 1/periodMs of `from` (as the token and leaky buckets and GCRA count), in 1/periodMs of `to`:
 * exact when the periods are equal, else rounded up, so that what was spent never shrinks by a rounding.
 */
export function unitsIn(units: number, from: { periodSeconds: number }, to: { periodSeconds: number }): number {
  if (from.periodSeconds === to.periodSeconds) return units;
  return Math.ceil((units * to.periodSeconds) / from.periodSeconds);
}
