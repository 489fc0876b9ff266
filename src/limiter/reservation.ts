/**
 * Reservations: fewer writes, with nothing ever admitted that storage does not cover.
 *
 * When an object writes a bucket, it stores the state charged with some units in
 * advance (and, for the refilling algorithms, dated a little ahead), and remembers
 * them as reserved. Later admissions spend reserved units without a write: the stored
 * state already counts them. Each algorithm's `reserve` says until when that holds:
 * before then, the stored state admits no more than the state in memory, at any later
 * time. If the object restarts, it starts from the stored state: a client can only
 * lose budget — the unspent reservation and the refill forgone while the stored state
 * is dated ahead, each at most a sixteenth of its burst — and never gains any.
 */

import type { Algorithm, RuleLimits } from "./types.ts";
import { periodMsOf } from "./units.ts";

/** Units charged in advance in the stored state and not yet spent. */
export interface Reservation {
  units: number;
  /** Spending them is sound only before this time (the algorithm's `reservableUntilMs`). */
  untilMs: number;
}

/** Most units reserved at once, whatever the burst: bounds what a restart can cost a client. */
export const MAX_RESERVED_UNITS = 256;

/** How many units to reserve for a rule: a sixteenth of its burst, at most `MAX_RESERVED_UNITS`. */
export function reservationUnits(limits: RuleLimits): number {
  return Math.min(MAX_RESERVED_UNITS, Math.floor(limits.burst / 16));
}

/**
 * How far ahead a refilling rule's stored state may be dated: the time it takes to refill a
 * sixteenth of its burst, so a restart forgoes at most that much refill.
 */
export function reservationHorizonMs(limits: RuleLimits): number {
  return Math.ceil((limits.burst * periodMsOf(limits)) / (16 * limits.limit));
}

/**
 * The state to store for a bucket whose state in memory is `state`: charged with a
 * reservation when the bucket can afford one, else as it is.
 */
export function reserveAhead<State>(
  algorithm: Algorithm<State>,
  state: State,
  limits: RuleLimits,
  nowMs: number,
): { stored: State; reservation: Reservation | undefined } {
  const units = reservationUnits(limits);
  if (units === 0) return { stored: state, reservation: undefined };
  const charged = algorithm.decide(state, limits, nowMs, units);
  if (!charged.decision.allowed) return { stored: state, reservation: undefined };
  const reserved = algorithm.reserve(state, charged.state, limits, nowMs, reservationHorizonMs(limits));
  if (reserved.untilMs <= nowMs) return { stored: state, reservation: undefined };
  return { stored: reserved.state, reservation: { units, untilMs: reserved.untilMs } };
}

/** Spends `cost` reserved units at `nowMs` if the reservation covers them; says whether it did (else a write is needed). */
export function spendReserved(reservation: Reservation | undefined, cost: number, nowMs: number): boolean {
  if (!reservation || reservation.units < cost || nowMs >= reservation.untilMs) return false;
  reservation.units -= cost;
  return true;
}
