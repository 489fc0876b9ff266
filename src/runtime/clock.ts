/** A source of the current time in epoch ms. The Durable Object is the only clock of its client. */
export interface Clock {
  nowMs(): number;
  /** Resolves once `ms` have passed on this clock. @default scheduler.wait */
  wait?(ms: number): Promise<void>;
}

/**
 * Wall-clock time. In production `Date.now()` advances only across I/O, which is
 * exactly the granularity a decision needs; tests replace it with a manual clock.
 */
export const systemClock: Clock = { nowMs: () => Date.now() };
