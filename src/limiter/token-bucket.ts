import type { Algorithm, Outcome, RuleLimits } from "./types.ts";
import { ceilSeconds, clampNow, msToFlow, periodMsOf, retryAfter, unitsIn } from "./units.ts";

/**
 * Token bucket state. The level is kept in integer units of 1/periodMs token, so
 * refilling `limit / periodSeconds` tokens per second is `limit` units per elapsed
 * millisecond: whole-number arithmetic with no rounding, which makes the bound
 * `burst + rate × t` exact rather than approximately true.
 */
export interface TokenBucketState {
  /** Tokens × period in ms. Full is `burst × periodMs`; below 0 while a debt from lowered limits is repaid. */
  level: number;
  /** Epoch ms of the last refill; never moves backwards. */
  updatedAtMs: number;
}

const periodMs = periodMsOf;

function capacity(limits: RuleLimits): number {
  return limits.burst * periodMs(limits);
}

/** Lazy refill: elapsed whole ms × limit units, capped at capacity; time running backwards adds nothing. */
function refill(state: TokenBucketState, limits: RuleLimits, nowMs: number): TokenBucketState {
  const now = clampNow(nowMs, state.updatedAtMs);
  const elapsedMs = now - state.updatedAtMs;
  if (elapsedMs === 0) return state;
  return {
    level: Math.min(capacity(limits), state.level + elapsedMs * limits.limit),
    updatedAtMs: now,
  };
}

/** The token bucket: bursts up to `burst`, refilled continuously at `limit / periodSeconds` per second. */
export const tokenBucket: Algorithm<TokenBucketState> = {
  initialState(limits, nowMs) {
    return { level: capacity(limits), updatedAtMs: Math.floor(nowMs) };
  },

  decide(state, limits, nowMs, cost): Outcome<TokenBucketState> {
    const refilled = refill(state, limits, nowMs);
    // Above 0 only for a state dated after now: as stored ahead by a reservation and loaded again after a restart.
    const lagMs = refilled.updatedAtMs - Math.floor(nowMs);
    const full = capacity(limits);
    const costUnits = cost * periodMs(limits);
    const remaining = (level: number) => Math.max(0, Math.floor(level / periodMs(limits)));

    if (refilled.level < costUnits) {
      // A cost above capacity can never be met: report it, and point retry-after at a full bucket.
      const impossible = costUnits > full;
      return {
        state,
        decision: {
          allowed: false,
          limit: limits.limit,
          remaining: remaining(refilled.level),
          resetSeconds: ceilSeconds(msToFlow(full - refilled.level, limits, lagMs)),
          ...retryAfter(false, impossible ? 0 : msToFlow(costUnits - refilled.level, limits, lagMs)),
          ...(impossible ? { reason: "cost-exceeds-capacity" as const } : {}),
        },
      };
    }
    const charged = { level: refilled.level - costUnits, updatedAtMs: refilled.updatedAtMs };
    return {
      state: charged,
      decision: {
        allowed: true,
        limit: limits.limit,
        remaining: remaining(charged.level),
        resetSeconds: ceilSeconds(msToFlow(full - charged.level, limits, lagMs)),
        ...retryAfter(true, 0),
      },
    };
  },

  // Below capacity nothing is clamped, so refill does not depend on when a token was taken; dated ahead, the stored
  // bucket refills nothing until then, so it stays below memory while memory is full and charged.
  reserve(state, charged, limits, _nowMs, horizonMs) {
    const datedAtMs = charged.updatedAtMs + horizonMs;
    return { state: { ...charged, updatedAtMs: datedAtMs }, untilMs: Math.max(this.fullAtMs(state, limits), datedAtMs) };
  },

  // Spent is what the bucket misses of its capacity, refilled to now under the old limits. Below 0 when more was
  // spent than the new capacity holds: that debt is repaid at the new rate before a token is left.
  rescale(state, from, to, nowMs) {
    const refilled = refill(state, from, nowMs);
    return { level: capacity(to) - unitsIn(capacity(from) - refilled.level, from, to), updatedAtMs: refilled.updatedAtMs };
  },

  fullAtMs(state, limits) {
    const missing = capacity(limits) - state.level;
    return state.updatedAtMs + Math.max(0, Math.ceil(missing / limits.limit));
  },

  leasing: {
    // Refilled as a bucket whose capacity is what the leases leave of it: below 0 when lowered limits leave less
    // than they hold, so that the level and the leases together never refill past the new capacity.
    advance(state, limits, nowMs, lent) {
      return refill(state, { ...limits, burst: limits.burst - lent }, nowMs);
    },
    leaseEndsAtMs() {
      return Number.POSITIVE_INFINITY;
    },
    credit(state, limits, _nowMs, units) {
      return { level: Math.min(capacity(limits), state.level + units * periodMs(limits)), updatedAtMs: state.updatedAtMs };
    },
  },
};
