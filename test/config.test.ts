import { describe, expect, it } from "vitest";
import { PolicyError, parsePolicy } from "../src/config.ts";

function problemsOf(raw: unknown): string[] {
  try {
    parsePolicy(raw);
  } catch (error) {
    if (error instanceof PolicyError) return error.problems;
    throw error;
  }
  throw new Error("expected the policy to be rejected");
}

describe("parsePolicy", () => {
  it("applies the defaults: token bucket, burst = limit, cost 1, 60 s retention", () => {
    expect(parsePolicy({ rules: [{ name: "default", limit: 5, period: 10 }] })).toEqual({
      rules: [{ name: "default", algorithm: "token-bucket", limit: 5, periodSeconds: 10, burst: 5, cost: 1 }],
      idleRetentionSeconds: 60,
    });
  });

  it("reads the same policy from a JSON string", () => {
    const policy = { rules: [{ name: "default", limit: 5, period: 10, burst: 7 }], idleRetentionSeconds: 0 };
    expect(parsePolicy(JSON.stringify(policy))).toEqual(parsePolicy(policy));
  });

  it.each([
    ["10s", 10],
    ["1m", 60],
    ["1h", 3600],
    ["1d", 86_400],
    [30, 30],
  ])("reads the period %s as %i seconds", (period, seconds) => {
    expect(parsePolicy({ rules: [{ name: "r", limit: 1, period }] }).rules[0]?.periodSeconds).toBe(seconds);
  });

  it.each([
    [{ rules: [{ name: "default", limit: 0, period: 10 }] }, "rules[0].limit: must be an integer >= 1"],
    [{ rules: [{ name: "default", limit: 2.5, period: 10 }] }, "rules[0].limit: must be an integer >= 1"],
    [{ rules: [{ name: "default", limit: "5", period: 10 }] }, "rules[0].limit: must be an integer >= 1 (requests per period)"],
    [{ rules: [{ name: "default", limit: 5 }] }, "rules[0].period: must be a number of seconds"],
    [{ rules: [{ name: "default", limit: 5, period: 0 }] }, "rules[0].period: must be at least 1 second"],
    [
      { rules: [{ name: "default", limit: 5, period: "10 weeks" }] },
      'rules[0].period: must be a number of seconds or a duration such as "10s"',
    ],
    [{ rules: [{ name: "default", limit: 5, period: "8d" }] }, "rules[0].period: must be at most 604800 seconds"],
    [{ rules: [{ name: "default", limit: 5, period: 10, burst: 0 }] }, "rules[0].burst: must be an integer >= 1"],
    [{ rules: [{ name: "default", limit: 5, period: 10, cost: 6 }] }, "rules[0].cost: must not exceed burst (5)"],
    [{ rules: [{ name: "default", limit: 5, period: 10, algorithm: "magic" }] }, "rules[0].algorithm: must be one of: token-bucket"],
    [{ rules: [{ name: "has space", limit: 5, period: 10 }] }, "rules[0].name: must be 1-64 characters"],
    [{ rules: [{ name: "default", limit: 5, period: 10, limt: 3 }] }, 'rules[0]: Unrecognized key: "limt"'],
    [{ rules: [] }, "rules: must contain at least one rule"],
    [{}, "rules: must be a list of rules"],
    [{ rules: [{ name: "a", limit: 1, period: 1 }], idleRetentionSeconds: -1 }, "idleRetentionSeconds: must be >= 0"],
    [
      {
        rules: [
          { name: "a", limit: 1, period: 1 },
          { name: "a", limit: 2, period: 2 },
        ],
      },
      'rules[1].name: duplicate rule name "a"',
    ],
    [undefined, "RATE_LIMIT_POLICY is not set"],
    ["[", "(policy): not valid JSON"],
  ])("rejects %j naming the field", (raw, problem) => {
    expect(problemsOf(raw).join("\n")).toContain(problem);
  });

  it("names every bad field at once", () => {
    const problems = problemsOf({ rules: [{ name: "a", limit: 0, period: 0 }] });
    expect(problems).toEqual(["rules[0].limit: must be an integer >= 1", "rules[0].period: must be at least 1 second"]);
  });

  it("accepts the policy shipped in wrangler.toml", async () => {
    const { env } = await import("cloudflare:workers");
    expect(parsePolicy(env.RATE_LIMIT_POLICY).rules.map((rule) => rule.name)).toEqual(["default"]);
  });
});
