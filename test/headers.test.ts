import { describe, expect, it } from "vitest";
import type { Decision } from "../src/decision.ts";
import { formatRateLimitHeaders } from "../src/headers.ts";

const verdict = { name: "per-second", allowed: true, limit: 10, periodSeconds: 1, remaining: 3, resetSeconds: 1, retryAfterSeconds: 0 };

describe("formatRateLimitHeaders", () => {
  it("describes every rule and sets no Retry-After when allowed", () => {
    const decision: Decision = {
      allowed: true,
      rules: [verdict, { ...verdict, name: "per-hour", limit: 1000, periodSeconds: 3600, remaining: 990, resetSeconds: 36 }],
    };
    expect(formatRateLimitHeaders(decision)).toEqual({
      "RateLimit-Policy": '"per-second";q=10;w=1, "per-hour";q=1000;w=3600',
      RateLimit: '"per-second";r=3;t=1, "per-hour";r=990;t=36',
    });
  });

  it("uses the latest retry time of the violated rules for Retry-After", () => {
    const decision: Decision = {
      allowed: false,
      rules: [
        { ...verdict, allowed: false, remaining: 0, retryAfterSeconds: 1 },
        { ...verdict, name: "per-hour", allowed: false, remaining: 0, retryAfterSeconds: 40 },
        { ...verdict, name: "per-day", allowed: true, retryAfterSeconds: 0 },
      ],
    };
    expect(formatRateLimitHeaders(decision)["Retry-After"]).toBe("40");
  });
});
