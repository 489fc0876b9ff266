import { describe, expect, it, vi } from "vitest";
import { compilePolicy, loadCompiledPolicy, type RuleSet } from "../../src/policy/compiled-policy.ts";
import { PolicyError, parsePolicy } from "../../src/policy/load.ts";

const policy = parsePolicy({
  rules: [
    { name: "all", limit: 100, period: "1m" },
    { name: "writes", limit: 10, period: "1m", match: { methods: ["POST"] } },
    { name: "everyone", limit: 1000, period: "1m", scope: "global" },
  ],
  tiers: { pro: { all: { limit: 1000 } } },
  allow: ["ip:192.0.2.1", "10.0.0.0/8"],
  deny: ["ip:192.0.2.1"],
});
const compiled = compilePolicy(policy);
const noHeaders = new Headers();

describe("compilePolicy", () => {
  it("hands requests that match the same rules the same rule set", () => {
    const first = compiled.ruleSetFor("key:a", noHeaders, "POST", "/x");
    const second = compiled.ruleSetFor("key:b", noHeaders, "POST", "/y");
    expect(first).toBe(second);
    expect(first).not.toBe(compiled.ruleSetFor("key:a", noHeaders, "GET", "/x"));
  });

  it("asks each object only for its rules: client rules with their tiers' limits, no match, provisional before a global rule", () => {
    const set = compiled.ruleSetFor("key:a", noHeaders, "POST", "/x");
    if (set === "deny-listed") throw new Error("not deny-listed");
    expect(set.key.split("\n").map((line) => JSON.parse(line)[0])).toEqual(["all", "writes", "everyone"]);
    const [client, global] = set.parts;
    expect(set.parts.map((part) => part.key)).toEqual(["client", "global"]);
    expect(client?.request.rules.map((rule) => [rule.name, rule.tiers])).toEqual([
      ["all", { pro: { limit: 1000, periodSeconds: undefined, burst: undefined } }],
      ["writes", undefined],
    ]);
    expect(client?.request.rules.some((rule) => "match" in rule)).toBe(false);
    expect(client?.request.provisional).toBe(true);
    expect(global?.request.rules.map((rule) => rule.name)).toEqual(["everyone"]);
    expect(global?.request.provisional).toBeUndefined();
  });

  it("keys a rule set by its rules' definitions, so that other limits under the same names are another rule set", () => {
    const other = compilePolicy({ ...policy, rules: policy.rules.map((rule) => ({ ...rule, limit: rule.limit + 1 })) });
    const set = compiled.ruleSetFor("key:a", noHeaders, "POST", "/x");
    const otherSet = other.ruleSetFor("key:a", noHeaders, "POST", "/x");
    if (set === "deny-listed" || otherSet === "deny-listed") throw new Error("not deny-listed");
    expect(otherSet.key).not.toBe(set.key);
    const fast = (limit: number) => compilePolicy(parsePolicy({ rules: [{ name: "fast", limit, period: "1s" }] }));
    const [ten, twenty] = [fast(10), fast(20)].map((each) => each.ruleSetFor("key:a", noHeaders, "GET", "/"));
    const leaseKeyOf = (set: RuleSet | "deny-listed" | undefined) => (set as RuleSet).parts[0]?.leaseKey;
    expect(leaseKeyOf(ten)).toEqual(expect.any(String));
    expect(leaseKeyOf(ten)).not.toBe(leaseKeyOf(twenty));
  });

  it("leases only the rules that refill two requests a lease lifetime, under their own limits or a tier's", () => {
    const setOf = (rules: unknown[], tiers = {}) =>
      compilePolicy(parsePolicy({ rules, tiers })).ruleSetFor("key:a", noHeaders, "GET", "/") as RuleSet;
    expect(setOf([{ name: "fast", limit: 2, period: "1s" }]).parts[0]?.leaseKey).toBeDefined();
    expect(setOf([{ name: "slow", limit: 20, period: "1h" }]).parts[0]?.leaseKey).toBeUndefined();
    expect(setOf([{ name: "slow", limit: 20, period: "1h" }], { pro: { slow: { limit: 10_000 } } }).parts[0]?.leaseKey).toBeDefined();
  });

  it("keeps a dimension's leases under one tier apart from another's, and leaves the other parts' alone", () => {
    const fast = compilePolicy(
      parsePolicy({
        dimensions: { org: { from: "caller" }, team: { from: "caller" } },
        rules: [
          { name: "per-user", limit: 100, period: "1s" },
          { name: "per-org", key: "org", limit: 200, period: "1s" },
          { name: "per-team", key: "team", limit: 50, period: "1h" },
        ],
        tiers: { enterprise: { "per-org": { limit: 2000 } } },
      }),
    );
    const set = fast.ruleSetFor("key:a", noHeaders, "GET", "/") as RuleSet;
    const leaseKeys = (each: RuleSet) => Object.fromEntries(each.parts.map((part) => [part.key, part.leaseKey]));
    const enterprise = fast.forDimensions(set, { skipped: [], tiers: { org: "enterprise" } });
    // A lease granted for an enterprise org is never spent by the same org on the free tier's limits, nor the reverse.
    expect(leaseKeys(enterprise).org).toEqual(expect.any(String));
    expect(leaseKeys(enterprise).org).not.toBe(leaseKeys(set).org);
    expect(leaseKeys(enterprise).client).toBe(leaseKeys(set).client);
    expect(leaseKeys(enterprise).team).toBeUndefined(); // never leased: too slow
    expect(enterprise.key).not.toBe(set.key); // nor a denial cached under one tier answered under the other
    expect(fast.forDimensions(set, { skipped: [], tiers: { org: "enterprise" } })).toBe(enterprise);
    // A dimension without a value loses its rules, and keeps the tier of the others.
    const withoutTeam = fast.forDimensions(set, { skipped: ["team"], tiers: { org: "enterprise" } });
    expect(withoutTeam.parts.map((part) => part.key)).toEqual(["client", "org"]);
    expect(leaseKeys(withoutTeam).org).toBe(leaseKeys(enterprise).org);
  });

  it("answers a deny-listed client before an allow-listed one, and gives an allow-listed client no rules", () => {
    expect(compiled.ruleSetFor("ip:192.0.2.1", noHeaders, "GET", "/")).toBe("deny-listed");
    const fromRange = compiled.ruleSetFor("key:a", new Headers({ "cf-connecting-ip": "10.1.2.3" }), "GET", "/");
    expect(fromRange).toMatchObject({ rules: [] });
  });

  it("is built once per policy value, and an invalid policy is its PolicyError", () => {
    const raw = JSON.stringify({ rules: [{ name: "r", limit: 1, period: 1 }] });
    expect(loadCompiledPolicy(raw)).toBe(loadCompiledPolicy(raw));
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      expect(loadCompiledPolicy(JSON.stringify({ rules: [] }))).toBeInstanceOf(PolicyError);
      expect(errors).toHaveBeenCalledOnce();
    } finally {
      errors.mockRestore();
    }
  });
});
