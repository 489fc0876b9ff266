import { describe, expect, it } from "vitest";
import { isRetryable } from "../../src/object-client/call-object.ts";

describe("isRetryable", () => {
  it.each([
    [{ retryable: true }, true],
    [{ retryable: true, overloaded: true }, false],
    [{ retryable: false }, false],
    [new Error("plain"), false],
    ["not an error", false],
  ])("%j → %s", (error, expected) => {
    expect(isRetryable(error)).toBe(expected);
  });
});
