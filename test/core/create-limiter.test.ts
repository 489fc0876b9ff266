import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { asRateLimitBinding, createLimiter, type LimiterOptions } from "../../src/core/create-limiter.ts";
import { KeyHasher, UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { createApp } from "../../src/worker/app.ts";
import { useClock } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

let prefixes = 0;

/**
 * A limiter of its own (its own prefix, so that tests in this file never share a bucket or a rule's definition), on
 * a manual clock that the objects of `keys` follow too.
 */
async function limiterFor(policy: unknown, keys: readonly string[], options: Partial<LimiterOptions> = {}) {
  prefixes += 1;
  const prefix = `core-test-${prefixes}`;
  const clock = new ManualClock();
  const hasher = options.keySecret ? new KeyHasher(options.keySecret) : UNKEYED_HASHER;
  for (const key of keys) await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, await hasher.clientId(key))), clock);
  return { limiter: createLimiter({ namespace: env.RATE_LIMITER, policy, prefix, clock, ...options }), clock, prefix };
}

async function successes(limit: () => Promise<{ success: boolean }>, times: number): Promise<boolean[]> {
  const results = [];
  for (let i = 0; i < times; i++) results.push((await limit()).success);
  return results;
}

describe("createLimiter().limit(key): the brief's examples", () => {
  it("3 per 10 s: alice true, true, true, false; bob true", async () => {
    const policy = { rules: [{ name: "three", algorithm: "fixed-window", limit: 3, period: "10s" }] };
    const { limiter } = await limiterFor(policy, ["alice", "bob"]);
    expect(await successes(() => limiter.limit("alice"), 4)).toEqual([true, true, true, false]);
    expect((await limiter.limit("bob")).success).toBe(true);
  });

  it("a bucket of 5 refilling 2 per second: 5 admitted, then denied; after 1 s, 2 more, then denied", async () => {
    const policy = { rules: [{ name: "refill", limit: 2, period: "1s", burst: 5 }] };
    const { limiter, clock } = await limiterFor(policy, ["carol"]);
    expect(await successes(() => limiter.limit("carol"), 6)).toEqual([true, true, true, true, true, false]);
    clock.advanceSeconds(1);
    expect(await successes(() => limiter.limit("carol"), 3)).toEqual([true, true, false]);
  });

  it("counts remaining 2, 1, 0, and says exactly when a denied call could pass", async () => {
    const policy = { rules: [{ name: "per-3s", limit: 3, period: "3s" }] };
    const { limiter, clock } = await limiterFor(policy, ["dave"]);
    const remaining = [];
    for (let i = 0; i < 3; i++) remaining.push((await limiter.limit("dave")).remaining);
    expect(remaining).toEqual([2, 1, 0]);
    const denied = await limiter.limit("dave");
    expect(denied).toMatchObject({ success: false, allowed: false, limit: 3, remaining: 0, retryAfterMs: 1000 });
    expect(denied.headers["Retry-After"]).toBe("1");
    expect(denied.headers["RateLimit-Policy"]).toBe('"per-3s";q=3;w=3');
    // Read lazily, written out whole: a result logged or sent on as JSON carries its headers and the summary.
    expect(JSON.parse(JSON.stringify(denied))).toMatchObject({ success: false, remaining: 0, headers: { "Retry-After": "1" } });
    clock.advanceMs(999);
    expect((await limiter.limit("dave")).success).toBe(false);
    clock.advanceMs(1);
    expect((await limiter.limit("dave")).success).toBe(true);
  });
});

describe("createLimiter().limit", () => {
  it("takes the binding's shape, limit({ key }), and answers its flat summary beside every rule's verdict", async () => {
    const policy = {
      rules: [
        { name: "minute", limit: 10, period: "1m" },
        { name: "hour", limit: 100, period: "1h" },
      ],
    };
    const { limiter, clock } = await limiterFor(policy, ["erin"]);
    const result = await limiter.limit({ key: "erin" });
    expect(result).toMatchObject({ success: true, allowed: true, limit: 10, remaining: 9, retryAfterMs: 0 });
    // Back to 10 once the minute's one request has refilled: 6 s at 10 a minute.
    expect(result.reset).toBe(clock.nowMs() + 6_000);
    expect(result.rules.map((rule) => [rule.name, rule.remaining])).toEqual([
      ["minute", 9],
      ["hour", 99],
    ]);
    expect(result.headers.RateLimit).toBe('"minute";r=9;t=6, "hour";r=99;t=36');
  });

  it("never lets a denial cached at one cost deny a smaller cost that would pass", async () => {
    const policy = { rules: [{ name: "tokens", algorithm: "fixed-window", limit: 10, period: "1m" }] };
    const { limiter } = await limiterFor(policy, ["frank"]);
    expect((await limiter.limit("frank", { cost: 7 })).remaining).toBe(3);
    expect((await limiter.limit("frank", { cost: 5 })).success).toBe(false);
    expect((await limiter.limit("frank", { cost: 5 })).success).toBe(false); // now from the cache
    const small = await limiter.limit("frank", { cost: 3 });
    expect(small).toMatchObject({ success: true, remaining: 0 });
  });

  it("applies the rules without a match by default, those named, or those a request matches", async () => {
    const policy = {
      rules: [
        { name: "any", limit: 100, period: "1h" },
        { name: "login", limit: 5, period: "1h", match: { path: "/login", methods: ["POST"] } },
      ],
    };
    const { limiter } = await limiterFor(policy, ["grace"]);
    expect((await limiter.limit("grace")).rules.map((rule) => rule.name)).toEqual(["any"]);
    expect((await limiter.limit("grace", { rules: ["login"] })).rules.map((rule) => rule.name)).toEqual(["login"]);
    const request = new Request("https://app.test/LOGIN/", { method: "POST" });
    const matched = await limiter.limit("grace", { request });
    expect(matched.rules.map((rule) => [rule.name, rule.remaining])).toEqual([
      ["any", 98],
      ["login", 3],
    ]);
    await expect(limiter.limit("grace", { rules: ["nope"] })).rejects.toThrow(
      'limit(): rules: no rule named "nope" (the policy has any, login)',
    );
  });

  it.each([
    ["an empty key", "", "limit(): key is empty"],
    ["a key that is not a string", 42, "limit(): key must be a string (got number)"],
    ["a key over 256 bytes", "k".repeat(257), "limit(): key is longer than 256 bytes"],
    ["a key with a control character", "a\nb", "limit(): key contains control characters"],
  ])("rejects %s with an error naming the key, never a shared bucket", async (_, key, message) => {
    const { limiter } = await limiterFor({ rules: [{ name: "keys", limit: 5, period: "1m" }] }, []);
    await expect(limiter.limit(key as string)).rejects.toThrow(message);
    await expect(limiter.limit({ key: key as string })).rejects.toThrow(TypeError);
  });

  it.each([
    [{ cost: 0 }, "limit(): cost must be a whole number from 1 to 1000000000 (got 0)"],
    [{ cost: 1.5 }, "limit(): cost must be a whole number from 1 to 1000000000 (got 1.5)"],
    [{ tier: "gold" }, "limit(): tier must be one of the policy's tiers: pro"],
    [{ tier: "constructor" }, "limit(): tier must be one of the policy's tiers: pro"],
    [{ rules: [] }, "limit(): rules must be a non-empty list of rule names"],
  ])("rejects the options %j naming the option", async (options, message) => {
    const policy = { rules: [{ name: "opts", limit: 5, period: "1m" }], tiers: { pro: { opts: { limit: 50 } } } };
    const { limiter } = await limiterFor(policy, []);
    await expect(limiter.limit("heidi", options)).rejects.toThrow(message);
  });

  it("keeps a tier's denials and leases apart from another's: a key upgraded after a denial is admitted at once", async () => {
    const policy = { rules: [{ name: "upgrade", limit: 2, period: "1h" }], tiers: { pro: { upgrade: { limit: 20 } } } };
    const { limiter } = await limiterFor(policy, ["upgraded"]);
    expect(await successes(() => limiter.limit("upgraded"), 3)).toEqual([true, true, false]);
    expect((await limiter.limit("upgraded")).success).toBe(false); // the free tier's denial, now cached
    expect(await limiter.limit("upgraded", { tier: "pro" })).toMatchObject({ success: true, limit: 20, remaining: 17 });
  });

  it("says when no rule applies to a call, rather than call it allow-listed", async () => {
    const policy = { rules: [{ name: "matched-only", limit: 5, period: "1m", match: { path: "/login" } }] };
    const { limiter } = await limiterFor(policy, []);
    expect(await limiter.limit("unmatched")).toMatchObject({ success: true, reason: "no-rule-applies", rules: [] });
    const id = await UNKEYED_HASHER.clientId("trusted");
    const { limiter: listing } = await limiterFor({ rules: [{ name: "listing", limit: 5, period: "1m" }], allow: [id] }, []);
    expect(await listing.limit("trusted")).toMatchObject({ success: true, reason: "allow-listed" });
  });

  it("takes the binding's delta as the cost in limit({ key, delta })", async () => {
    const { limiter } = await limiterFor({ rules: [{ name: "delta-direct", limit: 10, period: "1h" }] }, ["delta-direct-key"]);
    expect(await limiter.limit({ key: "delta-direct-key", delta: 4 })).toMatchObject({ success: true, remaining: 6 });
    await expect(limiter.limit({ key: "delta-direct-key", delta: 1, cost: 1 })).rejects.toThrow("give cost or delta, not both");
  });

  it("applies the tier a call names", async () => {
    const policy = { rules: [{ name: "tiered", limit: 5, period: "1m" }], tiers: { pro: { tiered: { limit: 50 } } } };
    const { limiter } = await limiterFor(policy, ["ivan"]);
    expect(await limiter.limit("ivan", { tier: "pro" })).toMatchObject({ limit: 50, remaining: 49 });
  });

  it("answers a deny-listed key without counting, saying why", async () => {
    const id = await UNKEYED_HASHER.clientId("mallory");
    const { limiter } = await limiterFor({ rules: [{ name: "listed", limit: 5, period: "1m" }], deny: [id] }, []);
    expect(await limiter.limit("mallory")).toMatchObject({ success: false, reason: "deny-listed", rules: [] });
  });

  it("admits exactly the limit of 50 concurrent calls, through one isolate's batching", async () => {
    const { limiter } = await limiterFor({ rules: [{ name: "concurrent", algorithm: "fixed-window", limit: 20, period: "1h" }] }, ["judy"]);
    const results = await Promise.all(Array.from({ length: 50 }, () => limiter.limit("judy")));
    expect(results.filter((result) => result.success)).toHaveLength(20);
    expect((await limiter.inspect("judy")).rules[0]).toMatchObject({ remaining: 0 });
  });
});

describe("keys, inspect and reset", () => {
  it("names a key's object by its hash, never the key, and the admin API finds it from the key", async () => {
    // No prefix: the shipped Worker's admin API names objects by the client id alone.
    const policy = { rules: [{ name: "default", limit: 5, period: "10s" }] };
    const limiter = createLimiter({ namespace: env.RATE_LIMITER, policy });
    const result = await limiter.limit("user-42@example.com");
    expect(result.remaining).toBe(4);
    const token = "admin-secret-token-3e9f0b7a1c5d2846";
    const bindings = { ...env, ADMIN_TOKEN: token, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const lookup = await createApp().request(
      "https://limiter.test/_ratelimit/clients/lookup",
      { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify({ key: "user-42@example.com" }) },
      bindings,
    );
    expect(await lookup.json()).toMatchObject({
      client: await UNKEYED_HASHER.clientId("user-42@example.com"),
      rules: [{ name: "default", remaining: 4 }],
    });
  });

  it("hashes keys by HMAC under its keySecret, and refuses a weak one naming it", async () => {
    const keySecret = "core-key-secret-8f2b6d0a4c9e1357";
    const { limiter, prefix } = await limiterFor({ rules: [{ name: "secret", limit: 5, period: "1m" }] }, ["kim"], { keySecret });
    await limiter.limit("kim");
    const keyed = await new KeyHasher(keySecret).clientId("kim");
    expect((await limiter.inspect("kim")).client).toBe(keyed);
    expect(keyed).not.toBe(await UNKEYED_HASHER.clientId("kim"));
    const stub = env.RATE_LIMITER.getByName(objectNameOf(prefix, keyed));
    expect(
      (
        await stub.inspect({
          rules: [
            {
              name: "secret",
              algorithm: "token-bucket",
              limit: 5,
              periodSeconds: 60,
              burst: 5,
              cost: 1,
              mode: "enforce",
              onError: "allow",
              scope: "client",
            },
          ],
        })
      ).rules[0],
    ).toMatchObject({ remaining: 4 });
    expect(() =>
      createLimiter({ namespace: env.RATE_LIMITER, policy: { rules: [{ name: "secret", limit: 5, period: "1m" }] }, keySecret: "short" }),
    ).toThrow("createLimiter(): keySecret must be at least 32 characters (it has 5)");
  });

  it("inspects without counting, and resets every rule or only those named", async () => {
    const policy = {
      rules: [
        { name: "a", limit: 5, period: "1h" },
        { name: "b", limit: 5, period: "1h" },
      ],
    };
    const { limiter } = await limiterFor(policy, ["leo"]);
    await limiter.limit("leo");
    await limiter.limit("leo");
    const before = await limiter.inspect("leo");
    expect(before.rules.map((rule) => rule.remaining)).toEqual([3, 3]);
    expect((await limiter.inspect("leo")).rules.map((rule) => rule.remaining)).toEqual([3, 3]);
    await limiter.reset("leo", { rules: ["a"] });
    expect((await limiter.inspect("leo")).rules.map((rule) => rule.remaining)).toEqual([5, 3]);
    await limiter.reset("leo");
    expect((await limiter.inspect("leo")).rules.map((rule) => rule.remaining)).toEqual([5, 5]);
    const { limiter: withGlobal } = await limiterFor({ rules: [{ name: "everyone", limit: 5, period: "1h", scope: "global" }] }, []);
    await expect(withGlobal.reset("leo", { rules: ["everyone"] })).rejects.toThrow('reset(): rules: "everyone" is a global rule');
  });

  it("refuses a second limiter without a prefix that defines a rule of the same name otherwise", () => {
    createLimiter({ namespace: env.RATE_LIMITER, policy: { rules: [{ name: "twice-core", limit: 5, period: "1m" }] } });
    expect(() =>
      createLimiter({ namespace: env.RATE_LIMITER, policy: { rules: [{ name: "twice-core", limit: 50, period: "1m" }] } }),
    ).toThrow(/createLimiter\(\): rule "twice-core" is defined twice in this Worker without a prefix/);
  });
});

describe("asRateLimitBinding", () => {
  /** Code written against Cloudflare's binding, word for word. */
  async function sendSms(env: { SMS_LIMITER: RateLimit }, phone: string): Promise<number> {
    const { success } = await env.SMS_LIMITER.limit({ key: phone });
    return success ? 200 : 429;
  }

  it("gives code written for env.X.limit({ key }) a real, exact limiter, as a test would bind it", async () => {
    const { limiter } = await limiterFor({ rules: [{ name: "sms", limit: 2, period: "1h" }] }, ["+15550123"]);
    const env = { SMS_LIMITER: asRateLimitBinding(limiter) };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push(await sendSms(env, "+15550123"));
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("takes the binding's delta as the cost", async () => {
    const { limiter } = await limiterFor({ rules: [{ name: "delta", limit: 10, period: "1h" }] }, ["delta-key"]);
    expect(await asRateLimitBinding(limiter).limit({ key: "delta-key", delta: 4 })).toMatchObject({ success: true, remaining: 6 });
  });
});
