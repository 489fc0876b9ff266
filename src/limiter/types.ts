/**
 * The contract every rate-limiting algorithm implements. Algorithms are pure:
 * no Workers imports and no clock of their own, `nowMs` is always an argument.
 */

/** The limits of one rule as an algorithm sees them. */
export interface RuleLimits {
  /** Requests (cost units) allowed per period. */
  limit: number;
  /** Length of the period in seconds. */
  periodSeconds: number;
  /** Largest amount that may be spent at once; for the token bucket, its capacity. */
  burst: number;
}

/** Why a request was denied when waiting would never help. */
export type DenialReason = "cost-exceeds-capacity";

/** The outcome of one rule for one request, as data. */
export interface RuleDecision {
  allowed: boolean;
  /** The rule's limit per period, as advertised in `RateLimit-Policy`. */
  limit: number;
  /** Whole units left after this decision. */
  remaining: number;
  /** Seconds until the rule is back to its initial, unused state (rounded up). */
  resetSeconds: number;
  /** Seconds until a request of this cost could be admitted: 0 when allowed, >= 1 when denied. */
  retryAfterSeconds: number;
  /**
   * The same wait in ms, never later than the first moment the request could be
   * admitted (0 when allowed, or when waiting cannot help): a denial may be cached that long.
   */
  retryAfterMs: number;
  /** Set when the request can never be admitted, whatever the wait. */
  reason?: DenialReason;
}

/** The result of deciding one request against one rule. */
export interface Outcome<State> {
  decision: RuleDecision;
  /** The state to keep: the very same object when the request was denied. */
  state: State;
}

/** One rate-limiting algorithm (a strategy): initial state, decision, and when it is full again. */
export interface Algorithm<State> {
  /** State of a client never seen before. */
  initialState(limits: RuleLimits, nowMs: number): State;
  /** Decides a request costing `cost` units at `nowMs`. A denial never changes the state. */
  decide(state: State, limits: RuleLimits, nowMs: number, cost: number): Outcome<State>;
  /** Epoch ms at which the state will be indistinguishable from `initialState` if nothing is spent. */
  fullAtMs(state: State, limits: RuleLimits): number;
  /**
   * What to store in place of `state`, given `charged` (`state` with some units charged
   * at `nowMs`), and until when it covers charges made in memory: as long as at most those
   * units are spent from `state` before `untilMs`, the stored state never has more left
   * than memory, at any later time (see `reservation.ts`). Algorithms that refill may date
   * the stored state up to `horizonMs` ahead, forgoing that much refill, to cover charges
   * for that long even when `state` is full.
   */
  reserve(state: State, charged: State, limits: RuleLimits, nowMs: number, horizonMs: number): Reserved<State>;
  /**
   * The state under `to` of a client whose state under `from` is `state`, at `nowMs`: what it has spent carries
   * over in full, so it has what it would have had had it spent the same under `to` (`remaining` never below 0;
   * spent beyond the new capacity is a debt), and it refills at `to`'s rate from now. Each algorithm's reading of
   * "spent" is in docs/algorithms.md (When limits change).
   */
  rescale(state: State, from: RuleLimits, to: RuleLimits, nowMs: number): State;
  /** Lending units out to isolates' leases; absent for the sliding windows, which never lease. */
  leasing?: Leasing<State>;
}

/**
 * Leases (docs/architecture.md, invariant 7). A lease of k units is charged like a request of cost k and
 * stays outstanding until it is given back or expires. For the algorithms bounded by burst + rate × t, the
 * bucket then refills only up to its capacity minus the units outstanding, so that what it holds plus what
 * the leases hold never exceeds its capacity and refills no faster than its rate: together, one bucket. The
 * fixed window needs no such limit: its leases end with the window they were charged in.
 */
export interface Leasing<State> {
  /**
   * The state at `nowMs`, refilled since it was last advanced while `lent` units were outstanding: never
   * above capacity − lent. Called at each change of `lent`, so that every span is refilled with its own.
   */
  advance(state: State, limits: RuleLimits, nowMs: number, lent: number): State;
  /** The state with `units` of a lease given back at `nowMs`, after `advance` to it: they are the bucket's again. */
  credit(state: State, limits: RuleLimits, nowMs: number, units: number): State;
  /** The latest a lease charged at `nowMs` may last: the end of its window for the fixed window, else unbounded. */
  leaseEndsAtMs(state: State, limits: RuleLimits, nowMs: number): number;
}

/** A state charged in advance, and until when it covers charges made in memory. */
export interface Reserved<State> {
  state: State;
  untilMs: number;
}
