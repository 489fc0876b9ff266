import { describe, expect, it } from "vitest";
import { PolicyError, parsePolicy } from "../../src/policy/load.ts";
import type { PolicyInput } from "../../src/policy/schema.ts";

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
  it("applies the defaults: token bucket, burst = limit, cost 1, enforce, fail open, per client, legacy headers, 60 s retention", () => {
    expect(parsePolicy({ rules: [{ name: "default", limit: 5, period: 10 }] })).toEqual({
      rules: [
        {
          name: "default",
          algorithm: "token-bucket",
          limit: 5,
          periodSeconds: 10,
          burst: 5,
          cost: 1,
          mode: "enforce",
          onError: "allow",
          key: "client",
          scope: "client",
        },
      ],
      tiers: {},
      clients: {},
      allow: [],
      deny: [],
      identity: { keyHeaders: ["x-api-key"], bearer: true, ipFallback: true, ipv6PrefixLength: 64, onInvalid: "reject" },
      dimensions: {},
      paths: { caseSensitive: false, trailingSlash: "equivalent", matrixParameters: "ignored" },
      legacyHeaders: true,
      logDecisions: "denied",
      idleRetentionSeconds: 60,
      objectTimeoutMs: 1000,
      groupCommitMs: 0,
      reservations: true,
      leases: true,
      leaseLifetimeMs: 1000,
      holdTtlSeconds: 600,
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
    [{ rules: [{ name: "default", limit: 5, period: 10, cost: 6 }] }, "rules[0].cost: must not exceed limit (5)"],
    [{ rules: [{ name: "default", limit: 5, period: 10, burst: 8, cost: 9 }] }, "rules[0].cost: must not exceed burst (8)"],
    [{ rules: [{ name: "w", algorithm: "fixed-window", limit: 5, period: 10, burst: 8 }] }, "rules[0].burst: fixed-window has no burst"],
    [
      { rules: [{ name: "w", algorithm: "sliding-window-log", limit: 20000, period: 10 }] },
      "rules[0].limit: must be at most 10000 for sliding-window-log",
    ],
    [{ rules: [{ name: "m", limit: 5, period: 10, match: { path: "api/*" } }] }, 'rules[0].match.path: must start with "/"'],
    [{ rules: [{ name: "m", limit: 5, period: 10, match: { methods: ["GE T"] } }] }, "rules[0].match.methods[0]: must be an HTTP method"],
    [{ rules: [{ name: "m", limit: 5, period: 10, mode: "dry-run" }] }, 'rules[0].mode: must be "enforce" or "shadow"'],
    [{ rules: [{ name: "m", limit: 5, period: 10, onError: "retry" }] }, 'rules[0].onError: must be "allow" or "deny"'],
    [{ rules: [{ name: "m", limit: 5, period: 10, scope: "region" }] }, 'rules[0].scope: must be "client" or "global"'],
    [{ rules: [{ name: "a", limit: 5, period: 10 }], tiers: { pro: { b: { limit: 9 } } } }, 'tiers.pro.b: no rule named "b"'],
    [
      { rules: [{ name: "a", limit: 5, period: 10, algorithm: "fixed-window" }], tiers: { pro: { a: { burst: 9 } } } },
      "tiers.pro.a.burst: fixed-window has no burst",
    ],
    [
      { rules: [{ name: "a", limit: 5, period: 10, cost: 5 }], tiers: { free: { a: { limit: 2 } } } },
      'tiers.free.a: leaves rule "a" a capacity below its cost',
    ],
    [{ rules: [{ name: "a", limit: 5, period: 10 }], tiers: { pro: { a: { limit: 0 } } } }, "tiers.pro.a.limit: must be an integer >= 1"],
    [
      { rules: [{ name: "a", limit: 5, period: 10 }], tiers: {}, clients: { "ip:192.0.2.1": "gold" } },
      'clients.ip:192.0.2.1: unknown tier "gold"',
    ],
    [
      { rules: [{ name: "a", limit: 5, period: 10 }], tiers: { pro: {} }, clients: { "key:sk_live_raw": "pro" } },
      "clients.key:sk_live_raw: keys must be client ids",
    ],
    [{ rules: [{ name: "a", limit: 5, period: 10 }], allow: ["10.0.0.0/33"] }, "allow[0]: must be a client id"],
    [{ rules: [{ name: "a", limit: 5, period: 10 }], deny: ["ip:2001:DB8::1"] }, "deny[0]: must be a client id"],
    [{ rules: [{ name: "a", limit: 5, period: 10 }], legacyHeaders: "no" }, "legacyHeaders: must be true or false"],
    [
      { rules: [{ name: "a", limit: 5, period: 10 }], identity: { keyHeaders: ["x api key"] } },
      "identity.keyHeaders[0]: must be a valid HTTP header name",
    ],
    [
      { rules: [{ name: "a", limit: 5, period: 10 }], identity: { ipv6PrefixLength: 129 } },
      "identity.ipv6PrefixLength: must be between 1 and 128",
    ],
    [
      { rules: [{ name: "a", limit: 5, period: 10 }], identity: { keyHeaders: [], bearer: false, ipFallback: false } },
      "identity: must leave at least one identity source",
    ],
    [{ rules: [{ name: "a", limit: 5, period: 10 }], identity: { onInvalid: "guess" } }, 'identity.onInvalid: must be "reject" or "ip"'],
    [{ rules: [{ name: "a", limit: 5, period: 10 }], objectTimeoutMs: 0 }, "objectTimeoutMs: must be >= 1"],
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

  it("refuses rule and tier names every JavaScript object already has, naming the field", () => {
    const rule = { name: "a", limit: 1, period: 1 };
    expect(problemsOf({ rules: [{ ...rule, name: "toString" }] }).join("\n")).toContain(
      "rules[0].name: must not be a name every JavaScript object has",
    );
    for (const tier of ["constructor", "toString", "hasOwnProperty"]) {
      expect(problemsOf({ rules: [rule], tiers: { [tier]: { a: { limit: 2 } } } }).join("\n")).toContain(
        `tiers.${tier}: tier names must not be`,
      );
    }
    // A client mapped to a tier no policy defines, though every object answers to its name.
    const mapped = { rules: [rule], clients: { [`key:${"a".repeat(64)}`]: "constructor" } };
    expect(problemsOf(mapped).join("\n")).toContain('unknown tier "constructor"');
    const parsed = JSON.parse('{"rules":[{"name":"a","limit":1,"period":1}],"tiers":{"__proto__":{"a":{"limit":2}}}}');
    expect(problemsOf(parsed).join("\n")).toContain("tiers.__proto__: tier names must not be");
  });

  it("names every bad field at once", () => {
    const problems = problemsOf({ rules: [{ name: "a", limit: 0, period: 0 }] });
    expect(problems).toEqual(["rules[0].limit: must be an integer >= 1", "rules[0].period: must be at least 1 second"]);
  });

  it("accepts access lists of client ids and IPv4 and IPv6 ranges", () => {
    const hash = "a".repeat(64);
    const policy = parsePolicy({
      rules: [{ name: "a", limit: 1, period: 1 }],
      allow: [`key:${hash}`, "10.0.0.0/8", "2001:db8::/32"],
      deny: ["ip:192.0.2.66"],
    });
    expect(policy.allow).toHaveLength(3);
  });

  it("gives a tier that raises the limit a burst of that limit, and keeps what it does not set", () => {
    const policy = parsePolicy({
      rules: [{ name: "api", limit: 10, period: "1m", burst: 20 }],
      tiers: { pro: { api: { limit: 100 } }, bursty: { api: { burst: 50 } } },
    });
    expect(policy.tiers).toEqual({ pro: { api: { limit: 100 } }, bursty: { api: { burst: 50 } } });
  });

  it("accepts the policy shipped in wrangler.toml", async () => {
    const { env } = await import("cloudflare:workers");
    expect(parsePolicy(env.RATE_LIMIT_POLICY).rules.map((rule) => rule.name)).toEqual(["default"]);
  });

  it("rejects a rule limited to matching nothing more loudly than silently: no methods", () => {
    expect(problemsOf({ rules: [{ name: "a", limit: 1, period: 1, match: { methods: [] } }] })).toEqual([
      "rules[0].match.methods: must list at least one method",
    ]);
  });
});

describe("PolicyInput, the type a policy is written in", () => {
  it("takes a period in seconds or as a duration, and no other type", () => {
    const inSeconds = { rules: [{ name: "a", limit: 1, period: 10 }] } satisfies PolicyInput;
    const asDuration = { rules: [{ name: "a", limit: 1, period: "1m" }] } satisfies PolicyInput;
    // @ts-expect-error a period is seconds or a duration string, never a boolean
    const wrong = { rules: [{ name: "a", limit: 1, period: true }] } satisfies PolicyInput;
    expect([inSeconds, asDuration, wrong]).toHaveLength(3);
  });
});
