import type { Algorithm, RuleDecision, RuleLimits } from "./types.ts";
import { ceilSeconds, clampNow, periodMsOf, retryAfter } from "./units.ts";

/** Fixed window state: what was spent in the window that starts at `windowStartMs`. */
export interface FixedWindowState {
  /** Start of the window, aligned to multiples of the period since the epoch. */
  windowStartMs: number;
  spent: number;
}

function windowStart(nowMs: number, limits: RuleLimits): number {
  const periodMs = periodMsOf(limits);
  return nowMs - (nowMs % periodMs);
}

function describe(allowed: boolean, state: FixedWindowState, limits: RuleLimits, nowMs: number, cost: number): RuleDecision {
  const untilNextWindowMs = state.windowStartMs + periodMsOf(limits) - nowMs;
  return {
    allowed,
    limit: limits.limit,
    remaining: Math.max(0, limits.limit - state.spent),
    resetSeconds: state.spent === 0 ? 0 : ceilSeconds(untilNextWindowMs),
    ...retryAfter(allowed, cost > limits.limit ? 0 : untilNextWindowMs),
  };
}

/**
 * Fixed window: at most `limit` per aligned window of `period`. Cheapest state (one
 * counter), but two adjacent windows can admit up to 2 × limit within one period.
 */
export const fixedWindow: Algorithm<FixedWindowState> = {
  initialState(limits, nowMs) {
    return { windowStartMs: windowStart(Math.floor(nowMs), limits), spent: 0 };
  },

  decide(state, limits, nowMs, cost) {
    const now = clampNow(nowMs, state.windowStartMs);
    const start = windowStart(now, limits);
    const current = start === state.windowStartMs ? state : { windowStartMs: start, spent: 0 };
    if (current.spent + cost > limits.limit) {
      return {
        state,
        decision: {
          ...describe(false, current, limits, now, cost),
          ...(cost > limits.limit ? { reason: "cost-exceeds-capacity" as const } : {}),
        },
      };
    }
    const next = { windowStartMs: start, spent: current.spent + cost };
    return { state: next, decision: describe(true, next, limits, now, cost) };
  },

  // Within one window only the count matters, not when it was spent; the next window starts afresh.
  reserve(_state, charged, limits) {
    return { state: charged, untilMs: charged.windowStartMs + periodMsOf(limits) };
  },

  // Spent is what the last window spent, if it overlaps the new window at now (under the same period: if it is
  // that window); it then counts in full in the new window, which ends on its own time.
  rescale(state, from, to, nowMs) {
    const now = clampNow(nowMs, state.windowStartMs);
    const start = windowStart(now, to);
    return { windowStartMs: start, spent: state.windowStartMs + periodMsOf(from) > start ? state.spent : 0 };
  },

  fullAtMs(state, limits) {
    return state.spent === 0 ? state.windowStartMs : state.windowStartMs + periodMsOf(limits);
  },

  // A lease is charged to its window and ends with it: what it holds can only be spent within that window.
  leasing: {
    advance(state) {
      return state;
    },
    leaseEndsAtMs(_state, limits, nowMs) {
      return windowStart(nowMs, limits) + periodMsOf(limits);
    },
    // Units given back to an earlier window are nothing to the current one, which never counted them; units taken
    // (a settlement above its hold, the bucket owing them) count in the window they are taken in.
    credit(state, limits, nowMs, units) {
      const start = windowStart(clampNow(nowMs, state.windowStartMs), limits);
      if (start === state.windowStartMs) return { windowStartMs: start, spent: Math.max(0, state.spent - units) };
      return units >= 0 ? state : { windowStartMs: start, spent: -units };
    },
  },
};
