import { describe, expect, it } from "vitest";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { parsePolicy } from "../../src/policy/load.ts";
import { limiterOnClock, policyProblemsOf } from "../client.ts";

/** A limiter of its own prefix on a manual clock, with the objects of these users, orgs and the global one on it. */
function hierarchy(policy: unknown, users: string[], orgs: string[]) {
  return limiterOnClock(policy, { keys: users, dimensions: { org: orgs } });
}

const levels = {
  dimensions: { org: { from: "caller" } },
  rules: [
    { name: "per-user", limit: 3, period: "1h" },
    { name: "per-org", key: "org", limit: 5, period: "1h" },
    { name: "everyone", key: "global", limit: 6, period: "1h" },
  ],
};

describe("one decision across user, org and global keys", () => {
  it("charges a call at every level or at none: a denial at the org or the global level costs the others nothing", async () => {
    const { limiter } = await hierarchy(levels, ["u1", "u2", "u4"], ["o1", "o2"]);
    const call = (user: string, org: string) => limiter.limit(user, { keys: { org } }).then((result) => result.success);
    const run = async (user: string, org: string, times: number) => {
      const results = [];
      for (let i = 0; i < times; i++) results.push(await call(user, org));
      return results;
    };
    // u1 spends its own 3; u2 then meets the org's 5.
    expect(await run("u1", "o1", 4)).toEqual([true, true, true, false]);
    expect(await run("u2", "o1", 3)).toEqual([true, true, false]);
    const denied = await limiter.limit("u2", { keys: { org: "o1" } });
    expect(denied.rules.find((rule) => !rule.allowed)?.name).toBe("per-org");
    // u2's own bucket was refunded for each call the org denied: 1 left of 3, not 0.
    expect((await limiter.inspect("u2")).rules.find((rule) => rule.name === "per-user")?.remaining).toBe(1);
    // o2 has its own 5, but everyone's 6 has one left: u4 gets it, then the global rule denies.
    expect(await run("u4", "o2", 2)).toEqual([true, false]);
    expect((await limiter.inspect("u4")).rules.find((rule) => rule.name === "per-user")?.remaining).toBe(2);
  });

  it("names the dimension a call gave no value for, and never counts it in a shared bucket", async () => {
    const { limiter } = await hierarchy(levels, ["u9"], []);
    await expect(limiter.limit("u9")).rejects.toThrow('limit(): the "org" dimension (keys.org) has no value, and its rules need one');
    await expect(limiter.limit("u9", { keys: { org: "" } })).rejects.toThrow("has no value");
  });

  it("skips the rules of a dimension a call has no value for, when the dimension says so", async () => {
    const policy = { ...levels, dimensions: { org: { from: "caller", whenMissing: "skip" } } };
    const { limiter } = await hierarchy(policy, ["solo"], []);
    const result = await limiter.limit("solo");
    expect(result.success).toBe(true);
    expect(result.rules.map((rule) => rule.name)).toEqual(["per-user", "everyone"]);
  });

  it("reads a dimension from a request header, hashed: its value names no object", async () => {
    const policy = {
      dimensions: { tenant: { from: "header", name: "X-Tenant" } },
      rules: [{ name: "per-tenant", key: "tenant", limit: 2, period: "1h" }],
    };
    const { limiter } = await hierarchy(policy, [], []);
    const request = (tenant: string) => new Request("https://api.test/", { headers: { "x-tenant": tenant } });
    const results = [];
    for (const user of ["a", "b", "c"]) results.push((await limiter.limit(user, { request: request("acme") })).success);
    expect(results).toEqual([true, true, false]);
    expect((await limiter.limit("d", { request: request("globex") })).success).toBe(true);
  });
  it("reads a dimension from a request's body, and leaves the body to the app", async () => {
    const policy = {
      dimensions: { email: { from: "body", field: "email", lowercase: true } },
      rules: [{ name: "per-email", key: "email", limit: 1, period: "1h" }],
    };
    const { limiter } = await hierarchy(policy, [], []);
    const login = (email: string) =>
      new Request("https://api.test/login", {
        method: "POST",
        body: JSON.stringify({ email }),
        headers: { "content-type": "application/json" },
      });
    const request = login("Ada@Example.com");
    expect((await limiter.limit("anyone", { request })).success).toBe(true);
    expect(await request.json()).toEqual({ email: "Ada@Example.com" });
    expect((await limiter.limit("anyone", { request: login("ada@example.com") })).success).toBe(false);
    expect((await limiter.limit("anyone", { request: login("bob@example.com") })).success).toBe(true);
  });
});

describe("dimensions in the policy", () => {
  const problemsOf = policyProblemsOf;

  it("rejects a rule whose key names a dimension no source provides, naming the field", () => {
    expect(problemsOf({ rules: [{ name: "r", key: "org", limit: 1, period: "1m" }] })).toEqual([
      'rules[0].key: no dimension named "org": declare it under dimensions with where its value comes from (caller, header, query or path)',
    ]);
  });

  it("takes scope as the older spelling of key, and refuses the two disagreeing", () => {
    expect(parsePolicy({ rules: [{ name: "r", scope: "global", limit: 1, period: "1m" }] }).rules[0]?.key).toBe("global");
    expect(problemsOf({ rules: [{ name: "r", scope: "global", key: "client", limit: 1, period: "1m" }] })[0]).toMatch(
      /^rules\[0\]\.scope: /,
    );
  });

  it("checks each dimension's source, naming the field", () => {
    expect(problemsOf({ dimensions: { org: { from: "header" } }, rules: [{ name: "r", limit: 1, period: "1m" }] })).toEqual([
      'dimensions.org.name: is required with from: "header"',
    ]);
    expect(problemsOf({ dimensions: { ip: { from: "caller" } }, rules: [{ name: "r", limit: 1, period: "1m" }] })[0]).toMatch(
      /^dimensions\.ip: /,
    );
  });

  it("checks a body field and a combined dimension, naming the field", () => {
    const rules = [{ name: "r", limit: 1, period: "1m" }];
    expect(problemsOf({ dimensions: { email: { from: "body" } }, rules })).toEqual([
      'dimensions.email.field: is required with from: "body"',
    ]);
    expect(problemsOf({ dimensions: { email: { from: "body", field: "email", name: "x" } }, rules })).toEqual([
      'dimensions.email.name: is for from: "header" or "query", not "body"',
    ]);
    expect(problemsOf({ dimensions: { pair: { from: "combined", of: ["email"] } }, rules })).toEqual([
      "dimensions.pair.of: must name 2 to 4 different dimensions",
    ]);
    expect(
      problemsOf({
        dimensions: { email: { from: "body", field: "email" }, pair: { from: "combined", of: ["email", "user"] } },
        rules,
      }),
    ).toEqual(['dimensions.pair.of[1]: no dimension named "user" (declare it, or use "ip")']);
    expect(
      problemsOf({
        dimensions: {
          email: { from: "body", field: "email", lowercase: true },
          pair: { from: "combined", of: ["email", "ip"] },
          nested: { from: "combined", of: ["pair", "ip"] },
        },
        rules,
      }),
    ).toEqual(['dimensions.nested.of[0]: "pair" is combined itself: name the dimensions it combines']);
    expect(
      problemsOf({
        dimensions: { email: { from: "body", field: "email" }, pair: { from: "combined", of: ["email", "ip"], lowercase: true } },
        rules,
      }),
    ).toEqual(["dimensions.pair.lowercase: is for a dimension read from the request: set it on the dimensions this one combines"]);
    expect(problemsOf({ dimensions: { email: { from: "body", field: "email", lowercase: "yes" } }, rules })).toEqual([
      "dimensions.email.lowercase: must be true or false",
    ]);
  });
});

describe("tiers that follow a dimension: the org's tier sets the org's rules", () => {
  const tiered = {
    dimensions: { org: { from: "caller" } },
    tiers: { enterprise: { "per-org": { limit: 8 }, "per-user": { limit: 1 } } },
    rules: [
      { name: "per-user", limit: 100, period: "1h" },
      { name: "per-org", key: "org", limit: 5, period: "1h" },
    ],
  };
  const orgId = async (org: string) => `org:${(await UNKEYED_HASHER.clientId(org)).slice("key:".length)}`;
  const admittedOf = async (calls: () => Promise<{ success: boolean }>, times: number) => {
    let admitted = 0;
    for (let i = 0; i < times; i++) if ((await calls()).success) admitted += 1;
    return admitted;
  };

  it("counts an org's rules under the tier the caller names with its key, and only the org's: the user keeps its own", async () => {
    const { limiter } = await hierarchy(tiered, ["u1", "u2"], ["big", "small"]);
    // The enterprise org admits 8, not 5; its tier's per-user limit of 1 is the users' tier's business, not the org's.
    expect(await admittedOf(() => limiter.limit("u1", { keys: { org: { key: "big", tier: "enterprise" } } }), 10)).toBe(8);
    expect(await admittedOf(() => limiter.limit("u2", { keys: { org: "small" } }), 10)).toBe(5);
    expect((await limiter.inspect("u1")).rules.find((rule) => rule.name === "per-user")?.remaining).toBe(92);
  });

  it("never answers an org under one tier with a denial cached under another", async () => {
    const { limiter } = await hierarchy(tiered, ["u3"], ["upgraded"]);
    expect(await admittedOf(() => limiter.limit("u3", { keys: { org: "upgraded" } }), 6)).toBe(5);
    // The org upgrades: its denial under the free limits is cached, but the enterprise limits leave it 3 more.
    const upgraded = () => limiter.limit("u3", { keys: { org: { key: "upgraded", tier: "enterprise" } } });
    expect(await admittedOf(upgraded, 4)).toBe(3);
  });

  it("takes an org's tier from the policy's clients, by its object's id, when the caller names none", async () => {
    const policy = { ...tiered, clients: { [await orgId("listed")]: "enterprise" } };
    const { limiter } = await hierarchy(policy, ["u4"], ["listed"]);
    expect(await admittedOf(() => limiter.limit("u4", { keys: { org: "listed" } }), 10)).toBe(8);
    // The caller's tier wins over the policy's entry, as a client's does.
    const { limiter: named } = await hierarchy(policy, ["u5"], ["listed"]);
    expect(await admittedOf(() => named.limit("u5", { keys: { org: { key: "listed", tier: "enterprise" } } }), 10)).toBe(8);
  });

  it("names a tier the policy lacks, and a key missing from { key, tier }", async () => {
    const { limiter } = await hierarchy(tiered, ["u6"], []);
    await expect(limiter.limit("u6", { keys: { org: { key: "o", tier: "gold" } } })).rejects.toThrow(
      "limit(): keys.org.tier must be one of the policy's tiers: enterprise",
    );
    await expect(limiter.limit("u6", { keys: { org: { key: "" } } })).rejects.toThrow(
      'limit(): the "org" dimension (keys.org.key) has no value, and its rules need one',
    );
  });

  it("checks the policy's clients: a dimension's object by its hash, never one of a dimension the policy lacks", async () => {
    const id = await orgId("acme");
    expect(policyProblemsOf({ ...tiered, clients: { [id]: "enterprise" } })).toEqual([]);
    expect(policyProblemsOf({ ...tiered, clients: { [id.replace("org:", "team:")]: "enterprise" } })).toEqual([
      expect.stringMatching(/^clients\.team:[0-9a-f]{64}: keys must be client ids .* or a dimension's object/),
    ]);
    expect(policyProblemsOf({ ...tiered, clients: { "org:acme": "enterprise" } })).toHaveLength(1);
  });
});
