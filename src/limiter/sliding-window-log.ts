import type { Algorithm, RuleDecision, RuleLimits } from "./types.ts";
import { ceilSeconds, clampNow, periodMsOf, retryAfter } from "./units.ts";

/** One admitted request: when, and how much it cost. */
export type LogEntry = [atMs: number, cost: number];

/**
 * Sliding window log state: every admission still inside the window, oldest first.
 * Each entry costs at least 1, so the log never holds more than `limit` entries.
 */
export interface SlidingWindowLogState {
  entries: LogEntry[];
  /** The latest time seen, so that time running backwards cannot revive expired entries. */
  seenAtMs: number;
}

/** Entries still inside the window (atMs, atMs + period]. */
function live(state: SlidingWindowLogState, nowMs: number, limits: RuleLimits): LogEntry[] {
  const periodMs = periodMsOf(limits);
  let first = 0;
  while (first < state.entries.length && (state.entries[first]?.[0] ?? 0) + periodMs <= nowMs) first++;
  return first === 0 ? state.entries : state.entries.slice(first);
}

function spentIn(entries: LogEntry[]): number {
  return entries.reduce((sum, [, cost]) => sum + cost, 0);
}

/** Ms until enough entries have left the window to free `needed` units. */
function msUntilFreed(entries: LogEntry[], needed: number, nowMs: number, limits: RuleLimits): number {
  let freed = 0;
  for (const [atMs, cost] of entries) {
    freed += cost;
    if (freed >= needed) return atMs + periodMsOf(limits) - nowMs;
  }
  return 0;
}

function describe(allowed: boolean, entries: LogEntry[], limits: RuleLimits, nowMs: number, waitMs: number): RuleDecision {
  const newest = entries[entries.length - 1];
  return {
    allowed,
    limit: limits.limit,
    remaining: Math.max(0, limits.limit - spentIn(entries)),
    resetSeconds: newest ? ceilSeconds(newest[0] + periodMsOf(limits) - nowMs) : 0,
    ...retryAfter(allowed, waitMs),
  };
}

/**
 * Sliding window log: exact. In any window of length `period`, at most `limit` is
 * admitted. Memory grows with the limit: one timestamp per admitted request.
 */
export const slidingWindowLog: Algorithm<SlidingWindowLogState> = {
  initialState(_limits, nowMs) {
    return { entries: [], seenAtMs: Math.floor(nowMs) };
  },

  decide(state, limits, nowMs, cost) {
    const now = clampNow(nowMs, state.seenAtMs);
    const entries = live(state, now, limits);
    const spent = spentIn(entries);
    if (spent + cost > limits.limit) {
      const impossible = cost > limits.limit;
      const waitMs = impossible ? 0 : msUntilFreed(entries, spent + cost - limits.limit, now, limits);
      return {
        state,
        decision: { ...describe(false, entries, limits, now, waitMs), ...(impossible ? { reason: "cost-exceeds-capacity" as const } : {}) },
      };
    }
    const next = { entries: [...entries, [now, cost] as LogEntry], seenAtMs: now };
    return { state: next, decision: describe(true, next.entries, limits, now, 0) };
  },

  // Every entry expires one period after its own time: only a charge in the same millisecond is interchangeable.
  reserve(_state, charged) {
    return { state: charged, untilMs: charged.seenAtMs + 1 };
  },

  // Spent is every admission still in the window, each at its own time: the log carries over as it is.
  rescale(state) {
    return state;
  },

  fullAtMs(state, limits) {
    const newest = state.entries[state.entries.length - 1];
    return newest ? newest[0] + periodMsOf(limits) : state.seenAtMs;
  },
};
