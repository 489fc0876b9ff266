import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { misconfigurationId } from "../../src/http/problem.ts";
import { KeyHasher, UNKEYED_HASHER } from "../../src/identity/secret.ts";
import type { RateLimiter } from "../../src/object/rate-limiter.ts";
import { VERSION } from "../../src/version.ts";
import { RAW_KEY_IN_PATH_PROBLEM } from "../../src/worker/admin-object-id.ts";
import { createApp } from "../../src/worker/app.ts";
import { misconfigurationOf, useClock, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const app = createApp();
const TOKEN = "admin-secret-token-3e9f0b7a1c5d2846";
const POLICY = {
  rules: [
    { name: "default", limit: 5, period: "10s" },
    { name: "hourly", algorithm: "fixed-window", limit: 100, period: "1h" },
  ],
  tiers: { pro: { default: { limit: 50 } } },
};
const withAdmin = { ...env, ADMIN_TOKEN: TOKEN, RATE_LIMIT_POLICY: JSON.stringify(POLICY) };
const auth = { Authorization: `Bearer ${TOKEN}` };

function admin(path: string, init: RequestInit = {}, bindings: object = withAdmin) {
  return app.request(`https://limiter.test/_ratelimit${path}`, init, bindings);
}

/** The admin path of a key's client: by its client id, since a raw key never goes in a URL. */
async function keyPath(key: string): Promise<string> {
  return `/clients/id:${await UNKEYED_HASHER.clientId(key)}`;
}

function call(key: string) {
  return app.request("https://limiter.test/api", { headers: { "x-api-key": key } }, withAdmin);
}

async function problemOf(response: Response) {
  expect(response.headers.get("Content-Type")).toBe("application/problem+json");
  return (await response.json()) as { status: number; detail: string; errors?: string[] };
}

describe("admin API misconfigured", () => {
  it.each(["/", "ops"])(
    "answers every request 500 naming ADMIN_PREFIX when it is %j, rather than guess which paths are admin",
    async (prefix) => {
      const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
      try {
        const bindings = { ...withAdmin, ADMIN_PREFIX: prefix };
        for (const path of ["/api", "/_ratelimit/health"]) {
          const response = await app.request(`https://limiter.test${path}`, { headers: { "x-api-key": "misprefixed" } }, bindings);
          expect(await misconfigurationOf(response)).toBe(
            misconfigurationId(
              'ADMIN_PREFIX: must be a path such as "/_ratelimit": a leading "/" and one or more segments of A-Z a-z 0-9 . _ ~ -',
            ),
          );
        }
        expect(errors).toHaveBeenCalledWith(
          JSON.stringify({ event: "config-invalid", field: "ADMIN_PREFIX", problem: "not a path of one or more segments" }),
        );
      } finally {
        errors.mockRestore();
      }
    },
  );
});

describe("keyed hashing (RATE_LIMIT_KEY_SECRET)", () => {
  const KEY_SECRET = "key-hashing-secret-4d9a0c7e1b3f5268";
  const keyed = { ...withAdmin, RATE_LIMIT_KEY_SECRET: KEY_SECRET };

  it("names a key's client by the HMAC of the key under the secret: its SHA-256 names no one", async () => {
    const key = "user-1234@example.com";
    const clientId = await useClockFor({ "x-api-key": key }, new ManualClock(), new KeyHasher(KEY_SECRET));
    const unkeyed = await UNKEYED_HASHER.clientId(key);
    expect(clientId).not.toBe(unkeyed);
    const statuses = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await app.request("https://limiter.test/api", { headers: { "x-api-key": key } }, keyed)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);

    const lookup = await admin("/clients/lookup", { method: "POST", headers: auth, body: JSON.stringify({ key }) }, keyed);
    expect(await lookup.json()).toMatchObject({ client: clientId, rules: [{ name: "default", remaining: 0 }, { name: "hourly" }] });
    // The id a dictionary attack would compute (SHA-256 of a likely key) holds nothing.
    const byHash = await admin(`/clients/id:${unkeyed}`, { headers: auth }, keyed);
    expect(await byHash.json()).toMatchObject({ client: unkeyed, rules: [{ name: "default", remaining: 5 }, { name: "hourly" }] });
  });

  it("refuses a secret too short to keep a dictionary out, naming it, on every limited and admin path", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const weak = { ...withAdmin, RATE_LIMIT_KEY_SECRET: "hunter2" };
      const expected = misconfigurationId(
        "RATE_LIMIT_KEY_SECRET: must be at least 32 characters (it has 7); generate one with `openssl rand -hex 32`",
      );
      expect(await misconfigurationOf(await app.request("https://limiter.test/api", { headers: { "x-api-key": "k" } }, weak))).toBe(
        expected,
      );
      expect(await misconfigurationOf(await admin("/clients/lookup", { method: "POST", headers: auth, body: '{"key":"k"}' }, weak))).toBe(
        expected,
      );
    } finally {
      errors.mockRestore();
    }
  });
});

describe("admin API with a weak token", () => {
  it("is refused, saying why, while every other path is limited and proxied as usual", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const bindings = { ...withAdmin, ADMIN_TOKEN: "password" };
      const refused = await app.request(
        "https://limiter.test/_ratelimit/clients/ip:192.0.2.1",
        { headers: { Authorization: "Bearer password" } },
        bindings,
      );
      expect(await misconfigurationOf(refused)).toBe(
        misconfigurationId("ADMIN_TOKEN: must be at least 32 characters (it has 8); generate one with `openssl rand -hex 32`"),
      );
      await useClockFor({ "x-api-key": "weak-token-bystander" }, new ManualClock());
      const ordinary = await app.request("https://limiter.test/api", { headers: { "x-api-key": "weak-token-bystander" } }, bindings);
      expect(ordinary.status).toBe(200);
      expect(errors).toHaveBeenCalledWith(
        JSON.stringify({ event: "config-invalid", field: "ADMIN_TOKEN", problem: "must be at least 32 characters (it has 8)" }),
      );
    } finally {
      errors.mockRestore();
    }
  });
});

describe("admin API switched off", () => {
  it("treats admin paths as ordinary paths when ADMIN_TOKEN is not set: limited and proxied", async () => {
    const headers = { "x-api-key": "no-admin-client" };
    await useClockFor(headers, new ManualClock());
    const response = await app.request(
      "https://limiter.test/_ratelimit/health",
      { headers },
      { ...env, RATE_LIMIT_POLICY: JSON.stringify(POLICY) },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("X-Demo-Origin")).toBe("yes");
    expect(response.headers.get("RateLimit")).not.toBeNull();
  });

  it.each([
    ["/_ratelimit/dashboard", {}],
    ["/ops/limits/dashboard", { ADMIN_PREFIX: "/ops/limits" }],
  ])("answers %s with a page saying how to enable the admin API, rather than pass it to the origin", async (path, vars) => {
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(POLICY), ...vars };
    const response = await app.request(`https://limiter.test${path}`, { headers: { "x-api-key": "no-admin-page" } }, bindings);
    expect(response.status).toBe(404);
    expect(response.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("X-Demo-Origin")).toBeNull();
    expect(response.headers.get("Content-Security-Policy")).toContain("default-src 'none'");
    const page = await response.text();
    expect(page).toContain("The admin API is disabled");
    expect(page).toContain("wrangler secret put ADMIN_TOKEN");
    // Any other path under the prefix is still the origin's.
    const other = await app.request(
      `https://limiter.test${path.replace("dashboard", "stats")}`,
      { headers: { "x-api-key": "no-admin-page" } },
      bindings,
    );
    expect(other.headers.get("X-Demo-Origin")).toBe("yes");
  });
});

describe("admin API", () => {
  it("locks an address out after 10 failed authentications a minute, whatever the token, and lets it back in", async () => {
    const address = "198.51.100.77";
    const clock = new ManualClock();
    await useClock(env.RATE_LIMITER.getByName(`admin-auth:ip:${address}`), clock);
    const from = (ip: string, token: string) =>
      admin("/clients/ip:192.0.2.1", { headers: { Authorization: `Bearer ${token}`, "CF-Connecting-IP": ip } });
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await from(address, `wrong-${i}`)).status);
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
    const locked = await from(address, TOKEN);
    expect(locked.status).toBe(429);
    expect(locked.headers.get("Retry-After")).toBe("6");
    expect((await problemOf(locked)).detail).toContain("failed authentications");
    // Another address is not locked out by this one's failures.
    expect((await from("198.51.100.78", TOKEN)).status).toBe(200);
    // One failure's worth of time later, the right token gets in again.
    clock.advanceSeconds(6);
    expect((await from(address, TOKEN)).status).toBe(200);
  });

  it("locks every address out after 100 failed authentications from all of them, then lets one in every 36 s", async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const allAddresses = env.RATE_LIMITER.getByName("admin-auth:all");
    await useClock(allAddresses, clock);
    // The budget is every test's: start it full here, and leave it so, on the system clock, for the tests after.
    onTestFinished(async () => {
      await allAddresses.reset();
      await evictDurableObject(allAddresses);
    });
    // Ten /64s of one /48, ten wrong guesses each: within every address's own budget.
    const from = (subnet: number, token: string) =>
      admin("/clients/ip:192.0.2.1", { headers: { Authorization: `Bearer ${token}`, "CF-Connecting-IP": `2001:db8:48:${subnet}::1` } });
    const statuses = new Set<number>();
    for (let subnet = 0; subnet < 10; subnet++) for (let i = 0; i < 10; i++) statuses.add((await from(subnet, `guess-${i}`)).status);
    expect([...statuses]).toEqual([401]);
    const locked = await from(10, TOKEN);
    expect(locked.status).toBe(429);
    expect(locked.headers.get("Retry-After")).toBe("36");
    expect((await problemOf(locked)).detail).toContain("from all addresses together");
    clock.advanceSeconds(36);
    expect((await from(11, TOKEN)).status).toBe(200);
  });

  it("answers every admin response with Cache-Control: no-store", async () => {
    const responses = [
      await admin("/health"),
      await admin(`${await keyPath("cached")}`, { headers: auth }),
      await admin(`${await keyPath("cached")}`, { headers: { Authorization: "Bearer wrong", "CF-Connecting-IP": "198.51.100.79" } }),
      await admin("/nowhere", { headers: auth }),
    ];
    expect(responses.map((response) => response.status)).toEqual([200, 200, 401, 404]);
    for (const response of responses) expect(response.headers.get("Cache-Control")).toBe("no-store");
  });

  it("answers health without authentication, with the version", async () => {
    const response = await admin("/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok", version: VERSION });
  });

  it.each([
    ["no Authorization header", {}],
    ["a wrong token", { Authorization: "Bearer not-the-token" }],
    ["a token that only shares a prefix", { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ["another scheme", { Authorization: `Basic ${btoa(`admin:${TOKEN}`)}` }],
  ])("answers 401 problem+json with WWW-Authenticate for %s", async (_, headers) => {
    const response = await admin(`${await keyPath("someone")}`, { headers });
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    expect((await problemOf(response)).status).toBe(401);
  });

  it("never proxies an admin path to the origin", async () => {
    const response = await admin("/nothing-here", { headers: auth });
    expect(response.status).toBe(404);
    expect(response.headers.get("X-Demo-Origin")).toBeNull();
  });

  it("shows a client's state for every rule, consuming nothing", async () => {
    await useClockFor({ "x-api-key": "inspected" }, new ManualClock());
    await call("inspected");
    await call("inspected");
    const first = await admin(`${await keyPath("inspected")}`, { headers: auth });
    const second = await admin(`${await keyPath("inspected")}`, { headers: auth });
    const body = (await first.json()) as {
      client: string;
      tier: null;
      override: null;
      rules: Array<{ name: string; remaining: number; leased: number }>;
    };
    expect(body.client).toMatch(/^key:[0-9a-f]{64}$/);
    expect(body.client).not.toContain("inspected");
    expect(body.tier).toBeNull();
    expect(body.override).toBeNull();
    // Rules this slow (5 per 10 s, 100 an hour) refill less than two requests a lease lifetime: never leased.
    expect(body.rules.map((rule) => [rule.name, rule.remaining, rule.leased])).toEqual([
      ["default", 3, 0],
      ["hourly", 98, 0],
    ]);
    expect(await second.json()).toEqual(body);
  });

  it("writes nothing when inspecting a client never seen", async () => {
    const response = await admin("/clients/ip:198.51.100.200", { headers: auth });
    expect(response.status).toBe(200);
    const stored = await runInDurableObject(env.RATE_LIMITER.getByName("ip:198.51.100.200"), (_, state) => ({
      n: [...state.storage.kv.list()].length,
    }));
    expect(stored.n).toBe(0);
  });

  it("resets a client so that it starts afresh", async () => {
    await useClockFor({ "x-api-key": "to-reset" }, new ManualClock());
    for (let i = 0; i < 5; i++) await call("to-reset");
    expect((await call("to-reset")).status).toBe(429);
    const reset = await admin(`${await keyPath("to-reset")}/reset`, { method: "POST", headers: auth });
    expect(reset.status).toBe(200);
    const after = await call("to-reset");
    expect(after.status).toBe(200);
    expect(after.headers.get("RateLimit")).toContain('"default";r=4');
  });

  it("applies an override from the client's very next request, and removes it", async () => {
    await useClockFor({ "x-api-key": "overridden" }, new ManualClock());
    const put = await admin(`${await keyPath("overridden")}/override`, {
      method: "PUT",
      headers: auth,
      body: JSON.stringify({ rules: { default: { limit: 2, period: "1m" } } }),
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ override: { rules: { default: { limit: 2, periodSeconds: 60 } } } });
    expect((await call("overridden")).headers.get("RateLimit-Policy")).toBe('"default";q=2;w=60, "hourly";q=100;w=3600');
    expect((await call("overridden")).status).toBe(200);
    expect((await call("overridden")).status).toBe(429);

    const removed = await admin(`${await keyPath("overridden")}/override`, { method: "DELETE", headers: auth });
    expect(removed.status).toBe(200);
    expect((await call("overridden")).headers.get("RateLimit-Policy")).toBe('"default";q=5;w=10, "hourly";q=100;w=3600');
  });

  it("sets a tier by override", async () => {
    await useClockFor({ "x-api-key": "upgraded" }, new ManualClock());
    await admin(`${await keyPath("upgraded")}/override`, { method: "PUT", headers: auth, body: JSON.stringify({ tier: "pro" }) });
    const inspected = (await (await admin(`${await keyPath("upgraded")}`, { headers: auth })).json()) as { tier: string };
    expect(inspected.tier).toBe("pro");
    expect((await call("upgraded")).headers.get("RateLimit-Policy")).toContain('"default";q=50;w=10');
  });

  it("sets an org's tier by override on its dimension's object, which then counts the org's rules under it", async () => {
    const policy = {
      dimensions: { org: { from: "header", name: "x-org" } },
      tiers: { enterprise: { "admin-per-org": { limit: 4 } } },
      rules: [{ name: "admin-per-org", key: "org", limit: 2, period: "1h" }],
    };
    const bindings = { ...withAdmin, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const orgPath = `/clients/id:org:${(await UNKEYED_HASHER.clientId("admin-acme")).slice("key:".length)}`;
    // A fresh key per request: what counts is the org's budget, and no user's cached denial.
    const send = () =>
      app.request("https://limiter.test/api", { headers: { "x-api-key": crypto.randomUUID(), "x-org": "admin-acme" } }, bindings);
    const statuses = async (times: number) => {
      const seen = [];
      for (let i = 0; i < times; i++) seen.push((await send()).status);
      return seen;
    };
    expect(await statuses(3)).toEqual([200, 200, 429]);
    const refused = await admin(
      `${orgPath}/override`,
      { method: "PUT", headers: auth, body: JSON.stringify({ rules: { default: {} } }) },
      bindings,
    );
    expect((await problemOf(refused)).errors).toEqual(['rules.default: no rule of the "org" dimension named "default"']);
    const put = await admin(
      `${orgPath}/override`,
      { method: "PUT", headers: auth, body: JSON.stringify({ tier: "enterprise" }) },
      bindings,
    );
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ tier: "enterprise", rules: [{ name: "admin-per-org", limit: 4, remaining: 2 }] });
    expect(await statuses(3)).toEqual([200, 200, 429]);
    const unknown = await admin(`/clients/id:team:${"0".repeat(64)}`, { headers: auth }, bindings);
    expect((await problemOf(unknown)).detail).toContain("is not a client id");
  });

  it("keeps an overridden client through cleanup while the override lasts", async () => {
    const clock = new ManualClock();
    const clientId = await useClockFor({ "x-api-key": "kept" }, clock);
    // In the future both for the API's validation (the real clock) and for the object (the test's clock).
    const expiresAt = clock.nowMs() + 7_200_000;
    await admin(`${await keyPath("kept")}/override`, { method: "PUT", headers: auth, body: JSON.stringify({ tier: "pro", expiresAt }) });
    await call("kept");
    clock.advanceSeconds(3600);
    const stub = env.RATE_LIMITER.getByName(clientId);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const inspected = (await (await admin(`${await keyPath("kept")}`, { headers: auth })).json()) as { override: { tier: string } | null };
    expect(inspected.override?.tier).toBe("pro");
    // Once it has expired, cleanup deletes the client.
    await runInDurableObject(stub, (limiter: RateLimiter) => {
      limiter.clock = { nowMs: () => expiresAt + 120_000 };
    });
    await runDurableObjectAlarm(stub);
    const rows = await runInDurableObject(stub, (_, state) => ({ n: [...state.storage.kv.list()].length }));
    expect(rows.n).toBe(0);
  });

  it.each([
    ["an unknown rule", { rules: { nope: { limit: 3 } } }, 'rules.nope: no client rule named "nope"'],
    ["a negative limit", { rules: { default: { limit: -1 } } }, "rules.default.limit: must be an integer >= 1"],
    ["an unknown tier", { tier: "platinum" }, "tier: must be one of the policy's tiers: pro"],
    ["a tier named like an object's built-in", { tier: "toString" }, "tier: must be one of the policy's tiers: pro"],
    [
      "a rule named like an object's built-in",
      { rules: { constructor: { limit: 3 } } },
      'rules.constructor: no client rule named "constructor"',
    ],
    ["burst on a window rule", { rules: { hourly: { burst: 5 } } }, "rules.hourly.burst: fixed-window has no burst"],
    ["an expiry in the past", { tier: "pro", expiresAt: "2020-01-01T00:00:00Z" }, "expiresAt: must be in the future"],
    ["an unknown field", { tier: "pro", colour: "red" }, 'Unrecognized key: "colour"'],
    ["nothing to override", {}, "(body): must set a tier, rules, or both"],
  ])("answers 400 problem+json naming the field for %s", async (_, body, detail) => {
    const response = await admin(`${await keyPath("bad-input")}/override`, { method: "PUT", headers: auth, body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    expect((await problemOf(response)).errors?.join("\n")).toContain(detail);
  });

  it("answers 400 for malformed JSON, a body over 16 KB and an unknown id form", async () => {
    const malformed = await admin(`${await keyPath("x")}/override`, { method: "PUT", headers: auth, body: "{tier:" });
    expect(malformed.status).toBe(400);
    expect((await problemOf(malformed)).detail).toBe("body: must be a JSON object");
    const huge = await admin(`${await keyPath("x")}/override`, {
      method: "PUT",
      headers: auth,
      body: JSON.stringify({ tier: "pro", pad: "x".repeat(17_000) }),
    });
    expect(huge.status).toBe(400);
    expect((await problemOf(huge)).detail).toBe("body: must be at most 16384 bytes");
    const badId = await admin("/clients/user:42", { headers: auth });
    expect(badId.status).toBe(400);
    expect((await problemOf(badId)).detail).toBe(
      '{id}: must be "id:<client id>" or "ip:<address>" (a key\'s client: POST {"key": "<api key>"} to /clients/lookup)',
    );
  });

  it("never takes a raw key from a URL, where request logs keep it, for any operation", async () => {
    const requests: Array<[string, RequestInit]> = [
      ["/clients/key:alice", { method: "GET" }],
      ["/clients/key:alice/reset", { method: "POST" }],
      ["/clients/key:alice/override", { method: "PUT", body: JSON.stringify({ tier: "pro" }) }],
      ["/clients/key:alice/override", { method: "DELETE" }],
    ];
    for (const [path, init] of requests) {
      const response = await admin(path, { ...init, headers: auth });
      expect(response.status).toBe(400);
      expect((await problemOf(response)).detail).toBe(RAW_KEY_IN_PATH_PROBLEM);
    }
  });

  it("finds a key's client from the key in a lookup body, hashed as for requests, and answers the path that names it", async () => {
    const clientId = await useClockFor({ "x-api-key": "looked-up" }, new ManualClock());
    await call("looked-up");
    const response = await admin("/clients/lookup", { method: "POST", headers: auth, body: JSON.stringify({ key: "looked-up" }) });
    expect(response.status).toBe(200);
    const found = (await response.json()) as { client: string; path: string; rules: Array<{ name: string; remaining: number }> };
    expect(found.client).toBe(clientId);
    expect(found.rules.map((rule) => [rule.name, rule.remaining])).toEqual([
      ["default", 4],
      ["hourly", 99],
    ]);
    expect(found.path).toBe(`/_ratelimit/clients/${encodeURIComponent(`id:${clientId}`)}`);
    const byPath = await app.request(`https://limiter.test${found.path}/reset`, { method: "POST", headers: auth }, withAdmin);
    expect(await byPath.json()).toEqual({ client: clientId, reset: true });
  });

  it.each([
    ["no key", {}, "key: must be the API key, a string"],
    ["a key that is not a string", { key: 42 }, "key: must be the API key, a string"],
    ["an empty key", { key: "" }, "key is empty"],
    ["a key over 256 bytes", { key: "k".repeat(257) }, "key is longer than 256 bytes"],
    ["another field", { key: "k", ip: "192.0.2.1" }, 'Unrecognized key: "ip"'],
  ])("answers a lookup with %s 400 naming the field", async (_, body, detail) => {
    const response = await admin("/clients/lookup", { method: "POST", headers: auth, body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    expect((await problemOf(response)).errors?.join("\n")).toContain(detail);
  });

  it("names a client by its client id as logs and metrics show it, never a raw key by that form", async () => {
    const headers = { "x-api-key": "known-by-its-id" };
    const clientId = await useClockFor(headers, new ManualClock());
    for (let i = 0; i < 5; i++) await call("known-by-its-id");
    expect((await call("known-by-its-id")).status).toBe(429);
    const v6 = encodeURIComponent("id:ip:2001:db8:1:2::/64");
    expect(((await (await admin(`/clients/${v6}`, { headers: auth })).json()) as { client: string }).client).toBe("ip:2001:db8:1:2::/64");
    const reset = await admin(`/clients/${encodeURIComponent(`id:${clientId}`)}/reset`, { method: "POST", headers: auth });
    expect(await reset.json()).toEqual({ client: clientId, reset: true });
    expect((await call("known-by-its-id")).status).toBe(200);
    const raw = await admin("/clients/id:key:known-by-its-id", { headers: auth });
    expect(raw.status).toBe(400);
    expect((await problemOf(raw)).detail).toMatch(/^\{id\}: "key:known-by-its-id" is not a client id/);
  });

  it("names IPv6 clients by their /64, whichever address of it is given", async () => {
    const a = (await (await admin("/clients/ip:2001:db8:1:2::99", { headers: auth })).json()) as { client: string };
    expect(a.client).toBe("ip:2001:db8:1:2::/64");
  });

  it("keeps the admin token from the origin when a client sends it on an ordinary path", async () => {
    await useClockFor({ "CF-Connecting-IP": "192.0.2.150" }, new ManualClock());
    const response = await app.request("https://limiter.test/api", { headers: { ...auth, "CF-Connecting-IP": "192.0.2.150" } }, withAdmin);
    expect(await response.json()).toMatchObject({ receivedAuthorization: false });
    await useClockFor({ Authorization: "Bearer a-client-key" }, new ManualClock());
    const client = await app.request("https://limiter.test/api", { headers: { Authorization: "Bearer a-client-key" } }, withAdmin);
    expect(await client.json()).toMatchObject({ receivedAuthorization: true });
  });

  it.each([
    ["a second Authorization credential", { Authorization: `Bearer a-client-key, Bearer ${TOKEN}` }, { receivedAuthorization: false }],
    ["a Bearer token beside a Basic one", { Authorization: `Bearer ${TOKEN}, Basic dXNlcjpwYXNz` }, { receivedAuthorization: false }],
    ["an x-api-key", { "x-api-key": TOKEN }, { receivedApiKey: false }],
    ["one of two x-api-key values", { "x-api-key": `another-key, ${TOKEN}` }, { receivedApiKey: false }],
    [
      "neither, with a client's own key",
      { "x-api-key": "own-key", Authorization: "Basic dXNlcjpwYXNz" },
      { receivedApiKey: true, receivedAuthorization: true },
    ],
  ])("keeps the admin token from the origin when it comes as %s", async (_, headers, received) => {
    await useClockFor(headers, new ManualClock());
    const response = await app.request("https://limiter.test/api", { headers }, withAdmin);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject(received);
  });

  it("still answers the admin token on admin paths while its client's denial on ordinary paths is cached", async () => {
    const clock = new ManualClock();
    const worker = createApp({ clock });
    const bindings = { ...withAdmin, ADMIN_TOKEN: "token-used-as-a-key-6b2e9d4f1a8c3705" };
    const headers = { Authorization: "Bearer token-used-as-a-key-6b2e9d4f1a8c3705" };
    const clientId = await useClockFor(headers, clock);
    const ordinary = () => worker.request("https://limiter.test/api", { headers }, bindings);
    for (let i = 0; i < 5; i++) expect((await ordinary()).status).toBe(200);
    expect((await ordinary()).status).toBe(429); // the object's denial, now cached
    expect((await ordinary()).status).toBe(429); // answered before routing

    const inspected = await worker.request(
      `https://limiter.test/_ratelimit${await keyPath("token-used-as-a-key-6b2e9d4f1a8c3705")}`,
      { headers },
      bindings,
    );
    expect(inspected.status).toBe(200);
    expect(await inspected.json()).toMatchObject({ client: clientId, rules: [{ name: "default", remaining: 0 }, { name: "hourly" }] });
  });
});

describe("admin API policy", () => {
  it("shows the active policy's rules, tiers, dimensions and list sizes, and no address, client id or key", async () => {
    const clientId = await UNKEYED_HASHER.clientId("policy-view-enterprise-key");
    const policy = {
      dimensions: { org: { from: "header", name: "x-org" } },
      rules: [
        { name: "per-user", limit: 10, period: "1m", match: { methods: ["POST"], path: "/v1/*" } },
        { name: "per-org", key: "org", limit: 100, period: "1h" },
        { name: "logins", limit: 5, period: "15m", count: "failed", block: { seconds: [60, 600] } },
      ],
      tiers: { enterprise: { "per-user": { limit: 1000 } } },
      clients: { [clientId]: "enterprise" },
      allow: ["192.0.2.0/24"],
      deny: ["198.51.100.7", "203.0.113.0/24"],
    };
    const bindings = { ...withAdmin, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    expect((await admin("/policy", {}, bindings)).status).toBe(401);
    const response = await admin("/policy", { headers: auth }, bindings);
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const text = await response.text();
    for (const secret of [clientId, "192.0.2.0", "198.51.100.7", "203.0.113.0", TOKEN]) expect(text).not.toContain(secret);
    expect(JSON.parse(text)).toEqual({
      rules: [
        {
          name: "per-user",
          algorithm: "token-bucket",
          limit: 10,
          periodSeconds: 60,
          burst: 10,
          cost: 1,
          key: "client",
          mode: "enforce",
          onError: "allow",
          match: { methods: ["POST"], path: "/v1/*" },
          count: "all",
          resetOnSuccess: false,
          block: null,
        },
        expect.objectContaining({ name: "per-org", key: "org", periodSeconds: 3600, match: { methods: null, path: null } }),
        expect.objectContaining({ name: "logins", count: "failed", block: { seconds: [60, 600], after: 1 } }),
      ],
      tiers: { enterprise: { "per-user": { limit: 1000 } } },
      dimensions: { org: { from: "header", name: "x-org", lowercase: false, whenMissing: "reject" } },
      lists: { allow: 1, deny: 2 },
      clientsByTier: { enterprise: 1 },
      identity: { keyHeaders: ["x-api-key"], bearer: true, ipFallback: true, ipv6PrefixLength: 64 },
      keyHashing: "sha256",
    });
    const keyed = await admin(
      "/policy",
      { headers: auth },
      { ...bindings, RATE_LIMIT_KEY_SECRET: "policy-view-key-secret-7c3e9a1f5b2d8046" },
    );
    expect(((await keyed.json()) as { keyHashing: string }).keyHashing).toBe("hmac-sha256");
  });
});

describe("admin API blocks", () => {
  it("blocks a client under every rule until the block is lifted, and says what is wrong with a bad body", async () => {
    await useClockFor({ "x-api-key": "blocked-by-hand" }, new ManualClock());
    const path = `${await keyPath("blocked-by-hand")}/block`;
    const bad = await admin(path, { method: "PUT", headers: auth, body: JSON.stringify({ seconds: 0 }) });
    expect(bad.status).toBe(400);
    expect((await problemOf(bad)).errors).toEqual(["seconds: must be a whole number of seconds from 1 to 2592000 (30 days)"]);
    const blocked = await admin(path, { method: "PUT", headers: auth, body: JSON.stringify({ seconds: 600 }) });
    expect(blocked.status).toBe(200);
    expect(((await blocked.json()) as { blockedUntilMs: number | null }).blockedUntilMs).not.toBeNull();
    const denied = await call("blocked-by-hand");
    expect(denied.status).toBe(429);
    expect(denied.headers.get("Retry-After")).toBe("600");
    const lifted = await admin(path, { method: "DELETE", headers: auth });
    expect(((await lifted.json()) as { blockedUntilMs: number | null }).blockedUntilMs).toBeNull();
    expect((await call("blocked-by-hand")).status).toBe(200);
    expect((await admin(path, { method: "PUT", body: JSON.stringify({ seconds: 60 }) })).status).toBe(401);
  });
});
