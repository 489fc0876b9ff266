import type { Algorithm, RuleDecision, RuleLimits } from "./types.ts";
import { ceilSeconds, clampNow, msToFlow, periodMsOf, retryAfter, unitsIn } from "./units.ts";

/**
 * Leaky bucket as a meter: each request pours its cost into a bucket of size
 * `burst` that leaks `limit / period` per second; a request that would overflow it
 * is denied. The level is kept in 1/periodMs units, so leaking is `limit` units per
 * whole ms and the arithmetic is exact.
 */
export interface LeakyBucketState {
  /** Water level × period in ms; empty is 0, full is `burst × periodMs`. */
  water: number;
  /** Epoch ms of the last leak; never moves backwards. */
  leakedAtMs: number;
}

function leak(state: LeakyBucketState, limits: RuleLimits, nowMs: number): LeakyBucketState {
  const now = clampNow(nowMs, state.leakedAtMs);
  return { water: Math.max(0, state.water - (now - state.leakedAtMs) * limits.limit), leakedAtMs: now };
}

function describe(allowed: boolean, water: number, limits: RuleLimits, waitUnits: number, lagMs: number): RuleDecision {
  const size = limits.burst * periodMsOf(limits);
  return {
    allowed,
    limit: limits.limit,
    remaining: Math.max(0, Math.floor((size - water) / periodMsOf(limits))),
    resetSeconds: ceilSeconds(msToFlow(water, limits, lagMs)),
    ...retryAfter(allowed, msToFlow(waitUnits, limits, lagMs)),
  };
}

/** The leaky bucket (meter): the mirror image of the token bucket, admitting the same requests. */
export const leakyBucket: Algorithm<LeakyBucketState> = {
  initialState(_limits, nowMs) {
    return { water: 0, leakedAtMs: Math.floor(nowMs) };
  },

  decide(state, limits, nowMs, cost) {
    const leaked = leak(state, limits, nowMs);
    // Above 0 only for a state dated after now: as stored ahead by a reservation and loaded again after a restart.
    const lagMs = leaked.leakedAtMs - Math.floor(nowMs);
    const size = limits.burst * periodMsOf(limits);
    const pour = cost * periodMsOf(limits);
    if (leaked.water + pour > size) {
      const impossible = pour > size;
      const waitUnits = impossible ? 0 : leaked.water + pour - size;
      return {
        state,
        decision: {
          ...describe(false, leaked.water, limits, waitUnits, lagMs),
          ...(impossible ? { reason: "cost-exceeds-capacity" as const } : {}),
        },
      };
    }
    const filled = { water: leaked.water + pour, leakedAtMs: leaked.leakedAtMs };
    return { state: filled, decision: describe(true, filled.water, limits, 0, lagMs) };
  },

  // Until the bucket is empty, water leaks at a constant rate whenever it was poured in; dated ahead, the stored
  // bucket leaks nothing until then, so it stays fuller than memory while memory is empty and poured into.
  reserve(state, charged, limits, _nowMs, horizonMs) {
    const datedAtMs = charged.leakedAtMs + horizonMs;
    return { state: { ...charged, leakedAtMs: datedAtMs }, untilMs: Math.max(this.fullAtMs(state, limits), datedAtMs) };
  },

  // Spent is the water in the bucket, leaked to now under the old limits; above the new size, it overflows until
  // it has leaked below it again at the new rate.
  rescale(state, from, to, nowMs) {
    const leaked = leak(state, from, nowMs);
    return { water: unitsIn(leaked.water, from, to), leakedAtMs: leaked.leakedAtMs };
  },

  fullAtMs(state, limits) {
    return state.leakedAtMs + Math.ceil(state.water / limits.limit);
  },

  // The mirror of the token bucket's: the water never leaks below what the leases hold.
  leasing: {
    advance(state, limits, nowMs, lent) {
      const leaked = leak(state, limits, nowMs);
      const floor = lent * periodMsOf(limits);
      return leaked.water >= floor ? leaked : { water: floor, leakedAtMs: leaked.leakedAtMs };
    },
    leaseEndsAtMs() {
      return Number.POSITIVE_INFINITY;
    },
    credit(state, limits, _nowMs, units) {
      return { water: Math.max(0, state.water - units * periodMsOf(limits)), leakedAtMs: state.leakedAtMs };
    },
  },
};
