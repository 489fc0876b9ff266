import { describe, expect, it } from "vitest";
import { formatRateLimitHeaders } from "../../src/http/rate-limit-headers.ts";
import type { Decision } from "../../src/object/protocol.ts";

const verdict = {
  name: "per-second",
  mode: "enforce" as const,
  allowed: true,
  limit: 10,
  periodSeconds: 1,
  remaining: 3,
  resetSeconds: 1,
  retryAfterSeconds: 0,
  retryAfterMs: 0,
};

describe("formatRateLimitHeaders", () => {
  it("describes every rule and sets no Retry-After when allowed", () => {
    const decision: Decision = {
      allowed: true,
      rules: [verdict, { ...verdict, name: "per-hour", limit: 1000, periodSeconds: 3600, remaining: 990, resetSeconds: 36 }],
    };
    expect(formatRateLimitHeaders(decision)).toEqual({
      "RateLimit-Policy": '"per-second";q=10;w=1, "per-hour";q=1000;w=3600',
      RateLimit: '"per-second";r=3;t=1, "per-hour";r=990;t=36',
      "X-RateLimit-Limit": "10",
      "X-RateLimit-Remaining": "3",
      "X-RateLimit-Reset": "1",
    });
    expect(formatRateLimitHeaders(decision, { legacyHeaders: false })["X-RateLimit-Limit"]).toBeUndefined();
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

  it("takes the legacy headers from the enforcing rule with the fewest remaining, then the longest reset", () => {
    const decision: Decision = {
      allowed: true,
      rules: [
        { ...verdict, name: "a", remaining: 5, resetSeconds: 10 },
        { ...verdict, name: "b", limit: 50, remaining: 2, resetSeconds: 3 },
        { ...verdict, name: "c", limit: 70, remaining: 2, resetSeconds: 30 },
        { ...verdict, name: "shadowed", mode: "shadow", limit: 1, remaining: 0, resetSeconds: 99 },
      ],
    };
    expect(formatRateLimitHeaders(decision)["X-RateLimit-Limit"]).toBe("70");
  });

  it("takes the legacy headers from the shadow rules when no rule enforces, and none when every rule is degraded", () => {
    const shadowOnly: Decision = {
      allowed: true,
      rules: [
        { ...verdict, name: "a", mode: "shadow", limit: 40, remaining: 9, resetSeconds: 5 },
        { ...verdict, name: "b", mode: "shadow", limit: 60, remaining: 9, resetSeconds: 8 },
      ],
    };
    expect(formatRateLimitHeaders(shadowOnly)["X-RateLimit-Limit"]).toBe("60");
    const degraded = formatRateLimitHeaders({ allowed: true, rules: [{ ...verdict, degraded: true }] });
    expect(degraded).toEqual({ "RateLimit-Policy": '"per-second";q=10;w=1', "X-RateLimit-Degraded": '"per-second"' });
  });

  it("ignores shadow rules for Retry-After and leaves degraded rules out of RateLimit", () => {
    const decision: Decision = {
      allowed: false,
      rules: [
        { ...verdict, allowed: false, remaining: 0, retryAfterSeconds: 3 },
        { ...verdict, name: "shadowed", mode: "shadow", allowed: false, retryAfterSeconds: 60 },
        { ...verdict, name: "global", degraded: true },
      ],
    };
    const headers = formatRateLimitHeaders(decision);
    expect(headers["Retry-After"]).toBe("3");
    expect(headers.RateLimit).not.toContain("global");
    expect(headers["RateLimit-Policy"]).toContain('"global"');
    expect(headers["X-RateLimit-Degraded"]).toBe('"global"');
  });
});
