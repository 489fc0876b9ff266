import type { Algorithm, RuleDecision, RuleLimits } from "./types.ts";
import { ceilSeconds, clampNow, periodMsOf, retryAfter, unitsIn } from "./units.ts";

/**
 * GCRA (generic cell rate algorithm, virtual scheduling) state: the theoretical
 * arrival time, TAT = `tatMs + tatFraction / limit` ms. The emission interval
 * `period / limit` is then exactly `periodMs` fractional units, so the arithmetic
 * stays in whole numbers however the period divides by the limit.
 */
export interface GcraState {
  /** Whole ms of the theoretical arrival time. */
  tatMs: number;
  /** Sub-millisecond part, in 1/limit ms: 0 <= tatFraction < limit. */
  tatFraction: number;
}

/** TAT − now in 1/limit ms; only called when TAT > now, where it is at most about 2 × burst × periodMs. */
function aheadUnits(state: GcraState, nowMs: number, limits: RuleLimits): number {
  return (state.tatMs - nowMs) * limits.limit + state.tatFraction;
}

function decision(allowed: boolean, aheadAfter: number, limits: RuleLimits, retryUnits: number): RuleDecision {
  const T = periodMsOf(limits);
  return {
    allowed,
    limit: limits.limit,
    remaining: Math.max(0, Math.floor((limits.burst * T - aheadAfter) / T)),
    resetSeconds: ceilSeconds(Math.ceil(aheadAfter / limits.limit)),
    ...retryAfter(allowed, Math.ceil(retryUnits / limits.limit)),
  };
}

/**
 * GCRA: a request of cost n conforms if, after pushing TAT n emission intervals
 * later, TAT is at most `burst` intervals ahead of now. Admits exactly what a token
 * bucket of capacity `burst` admits, with one timestamp as its state.
 */
export const gcra: Algorithm<GcraState> = {
  initialState(_limits, nowMs) {
    return { tatMs: Math.floor(nowMs), tatFraction: 0 };
  },

  decide(state, limits, nowMs, cost) {
    const now = clampNow(nowMs, 0);
    const T = periodMsOf(limits);
    const ahead = state.tatMs > now || (state.tatMs === now && state.tatFraction > 0) ? aheadUnits(state, now, limits) : 0;
    const aheadAfter = ahead + cost * T;
    const tolerance = limits.burst * T;
    if (aheadAfter > tolerance) {
      const retryUnits = cost * T > tolerance ? 0 : aheadAfter - tolerance;
      return {
        state,
        decision: {
          ...decision(false, ahead, limits, retryUnits),
          ...(cost * T > tolerance ? { reason: "cost-exceeds-capacity" as const } : {}),
        },
      };
    }
    const next: GcraState = { tatMs: now + Math.floor(aheadAfter / limits.limit), tatFraction: aheadAfter % limits.limit };
    return { state: next, decision: decision(true, aheadAfter, limits, 0) };
  },

  // Before the theoretical arrival time, every charge pushes it back by the same amount whenever it is made;
  // pushed back by the horizon too, it covers charges until then even when memory is full.
  reserve(state, charged, limits, nowMs, horizonMs) {
    return {
      state: { ...charged, tatMs: charged.tatMs + horizonMs },
      untilMs: Math.max(this.fullAtMs(state, limits), clampNow(nowMs, 0) + horizonMs),
    };
  },

  // Spent is how far TAT is ahead of now: one emission interval per request, periodMs in 1/limit ms. It may end
  // up beyond the new tolerance, which then admits nothing until TAT is back within it.
  rescale(state, from, to, nowMs) {
    const now = clampNow(nowMs, 0);
    const ahead = state.tatMs >= now ? aheadUnits(state, now, from) : 0;
    return atAhead(now, unitsIn(ahead, from, to), to);
  },

  fullAtMs(state) {
    return state.tatMs + (state.tatFraction > 0 ? 1 : 0);
  },

  // The bucket is as full as it can be when TAT is now; with units lent out, when it is that many intervals ahead.
  // Both work relative to now, in 1/limit ms: an absolute TAT times the limit could pass 2^53.
  leasing: {
    advance(state, limits, nowMs, lent) {
      const now = clampNow(nowMs, 0);
      const floorUnits = lent * periodMsOf(limits);
      const ahead = state.tatMs >= now ? aheadUnits(state, now, limits) : 0;
      return ahead >= floorUnits ? state : atAhead(now, floorUnits, limits);
    },
    leaseEndsAtMs() {
      return Number.POSITIVE_INFINITY;
    },
    credit(state, limits, nowMs, units) {
      const now = clampNow(nowMs, 0);
      const ahead = state.tatMs >= now ? aheadUnits(state, now, limits) : 0;
      return atAhead(now, Math.max(0, ahead - units * periodMsOf(limits)), limits);
    },
  },
};

/** The state whose TAT is `units` (in 1/limit ms) after `nowMs`. */
function atAhead(nowMs: number, units: number, limits: RuleLimits): GcraState {
  return { tatMs: nowMs + Math.floor(units / limits.limit), tatFraction: units % limits.limit };
}
