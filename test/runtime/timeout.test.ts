import { afterEach, describe, expect, it, vi } from "vitest";
import { withTimeout } from "../../src/runtime/timeout.ts";

describe("withTimeout", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("rejects with the timeout's error once the time has passed, and not a millisecond before", async () => {
    vi.useFakeTimers();
    let settled = false;
    const racing = withTimeout(new Promise<never>(() => undefined), 100, () => new Error("too slow")).finally(() => {
      settled = true;
    });
    const rejected = expect(racing).rejects.toThrow("too slow");
    await vi.advanceTimersByTimeAsync(99);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await rejected;
  });

  it("settles as the promise does and leaves no timer behind", async () => {
    vi.useFakeTimers();
    await expect(withTimeout(Promise.resolve("answer"), 100, () => new Error("too slow"))).resolves.toBe("answer");
    expect(vi.getTimerCount()).toBe(0);
  });
});
