import type { Clock } from "../src/runtime/clock.ts";

/** A clock that moves only when a test says so. */
export class ManualClock implements Clock {
  // In the future, so alarms the object sets from it are never clamped to "now" nor fire by themselves.
  constructor(private currentMs = Date.UTC(2030, 0, 1)) {}

  nowMs(): number {
    return this.currentMs;
  }

  advanceSeconds(seconds: number): void {
    this.currentMs += seconds * 1000;
  }

  advanceMs(ms: number): void {
    this.currentMs += ms;
  }
}
