import type { Algorithm, RuleDecision, RuleLimits } from "./types.ts";
import { ceilSeconds, clampNow, periodMsOf, retryAfter } from "./units.ts";

/** Sliding window counter state: what was spent in the current aligned window and the one before. */
export interface SlidingWindowCounterState {
  windowStartMs: number;
  current: number;
  previous: number;
}

function roll(state: SlidingWindowCounterState, nowMs: number, limits: RuleLimits): SlidingWindowCounterState {
  const periodMs = periodMsOf(limits);
  const start = nowMs - (nowMs % periodMs);
  if (start === state.windowStartMs) return state;
  const previous = start - periodMs === state.windowStartMs ? state.current : 0;
  return { windowStartMs: start, current: 0, previous };
}

/**
 * The estimate × period, in whole numbers: `previous × (period − elapsed) + current × period`,
 * i.e. the previous window's count weighted by how much of it the sliding window still covers.
 */
function weighted(state: SlidingWindowCounterState, nowMs: number, limits: RuleLimits): number {
  const periodMs = periodMsOf(limits);
  return state.previous * (periodMs - (nowMs - state.windowStartMs)) + state.current * periodMs;
}

/** Ms until the estimate has fallen by `excess` (× period): the previous window's weight shrinks by `previous` per ms. */
function msUntilBelow(state: SlidingWindowCounterState, excess: number, nowMs: number, limits: RuleLimits): number {
  const untilWindowEndMs = state.windowStartMs + periodMsOf(limits) - nowMs;
  if (state.previous === 0 || excess > state.previous * untilWindowEndMs) return untilWindowEndMs;
  return Math.ceil(excess / state.previous);
}

function describe(allowed: boolean, state: SlidingWindowCounterState, limits: RuleLimits, nowMs: number, waitMs: number): RuleDecision {
  const periodMs = periodMsOf(limits);
  const untilWindowEndMs = state.windowStartMs + periodMs - nowMs;
  return {
    allowed,
    limit: limits.limit,
    remaining: Math.max(0, Math.floor((limits.limit * periodMs - weighted(state, nowMs, limits)) / periodMs)),
    // Both counters are gone once the current window has also slid out.
    resetSeconds: state.current > 0 ? ceilSeconds(untilWindowEndMs + periodMs) : state.previous > 0 ? ceilSeconds(untilWindowEndMs) : 0,
    ...retryAfter(allowed, waitMs),
  };
}

/**
 * Sliding window counter: approximates a sliding window with two counters by
 * assuming the previous window's requests were spread evenly. Constant memory;
 * never more than `limit` per aligned window, so at most 2 × limit in any period.
 */
export const slidingWindowCounter: Algorithm<SlidingWindowCounterState> = {
  initialState(limits, nowMs) {
    const now = Math.floor(nowMs);
    return { windowStartMs: now - (now % periodMsOf(limits)), current: 0, previous: 0 };
  },

  decide(state, limits, nowMs, cost) {
    const now = clampNow(nowMs, state.windowStartMs);
    const rolled = roll(state, now, limits);
    const periodMs = periodMsOf(limits);
    const excess = weighted(rolled, now, limits) + cost * periodMs - limits.limit * periodMs;
    if (excess > 0) {
      const impossible = cost > limits.limit;
      const waitMs = impossible
        ? 0
        : rolled.current + cost > limits.limit
          ? rolled.windowStartMs + periodMs - now
          : msUntilBelow(rolled, excess, now, limits);
      return {
        state,
        decision: { ...describe(false, rolled, limits, now, waitMs), ...(impossible ? { reason: "cost-exceeds-capacity" as const } : {}) },
      };
    }
    const next = { ...rolled, current: rolled.current + cost };
    return { state: next, decision: describe(true, next, limits, now, 0) };
  },

  // Within one window only its count matters, now and later when it is the previous window.
  reserve(_state, charged, limits) {
    return { state: charged, untilMs: charged.windowStartMs + periodMsOf(limits) };
  },

  // Spent is the estimate: under the same period the counters carry over as they are; under another, the estimate
  // at now (rounded up) counts in the new window at now.
  rescale(state, from, to, nowMs) {
    if (from.periodSeconds === to.periodSeconds) return state;
    const now = clampNow(nowMs, state.windowStartMs);
    const spent = Math.ceil(weighted(roll(state, now, from), now, from) / periodMsOf(from));
    const start = now - (now % periodMsOf(to));
    return { windowStartMs: start, current: spent, previous: 0 };
  },

  fullAtMs(state, limits) {
    const periodMs = periodMsOf(limits);
    if (state.current > 0) return state.windowStartMs + 2 * periodMs;
    return state.previous > 0 ? state.windowStartMs + periodMs : state.windowStartMs;
  },
};
