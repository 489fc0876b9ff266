import type { Clock } from "../src/runtime/clock.ts";

/** A clock that moves only when a test says so. */
export class ManualClock implements Clock {
  // In the future, so alarms the object sets from it are never clamped to "now" nor fire by themselves.
  constructor(private currentMs = Date.UTC(2030, 0, 1)) {}

  nowMs(): number {
    return this.currentMs;
  }

  private readonly waiting: Array<{ atMs: number; resolve: () => void }> = [];

  /** Resolves once the test has advanced the clock by `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push({ atMs: this.currentMs + ms, resolve });
      this.wake();
    });
  }

  advanceSeconds(seconds: number): void {
    this.advanceMs(seconds * 1000);
  }

  advanceMs(ms: number): void {
    this.currentMs += ms;
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiting.filter(({ atMs }) => atMs <= this.currentMs)) {
      this.waiting.splice(this.waiting.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
}
