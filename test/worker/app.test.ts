import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { misconfigurationId } from "../../src/http/problem.ts";
import { STATE_KEY } from "../../src/object/rate-limiter.ts";
import { loadCompiledPolicy } from "../../src/policy/compiled-policy.ts";
import { PolicyError } from "../../src/policy/load.ts";
import { createApp } from "../../src/worker/app.ts";
import { misconfigurationOf, statuses, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const app = createApp();

/** The real app, on `clock`, with the policy given as a JSON string, as `wrangler dev --var` or a dashboard variable would. */
function requestWithPolicy(policy: unknown, headers: HeadersInit, clock: ManualClock) {
  return createApp({ clock }).request("https://limiter.test/anything", { headers }, { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) });
}

describe("the Worker as shipped (wrangler.toml policy: 5 per 10 s)", () => {
  it("limits by CF-Connecting-IP and answers 429 problem+json with Retry-After once the bucket is empty", async () => {
    const headers = { "CF-Connecting-IP": "203.0.113.7" };
    await useClockFor(headers, new ManualClock());
    const send = () => exports.default.fetch("https://limiter.test/api", { headers });
    expect(await statuses(send, 5)).toEqual([200, 200, 200, 200, 200]);

    const denied = await send();
    expect(denied.status).toBe(429);
    expect(denied.headers.get("Content-Type")).toBe("application/problem+json");
    expect(denied.headers.get("Retry-After")).toBe("2");
    expect(denied.headers.get("RateLimit-Policy")).toBe('"default";q=5;w=10');
    expect(denied.headers.get("RateLimit")).toBe('"default";r=0;t=10');
    expect(await denied.json()).toEqual({
      type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
      title: "Request cannot be satisfied as assigned quota has been exceeded",
      status: 429,
      detail: 'Rate limit exceeded for "default"; retry in 2 s.',
      "violated-policies": ["default"],
    });
  });

  it("puts the RateLimit headers on admitted responses", async () => {
    const headers = { "x-api-key": "headers-key" };
    await useClockFor(headers, new ManualClock());
    const response = await exports.default.fetch("https://limiter.test/", { headers });
    expect(response.status).toBe(200);
    expect(response.headers.get("RateLimit-Policy")).toBe('"default";q=5;w=10');
    expect(response.headers.get("RateLimit")).toBe('"default";r=4;t=2');
    expect(response.headers.get("Retry-After")).toBeNull();
  });

  it("ignores X-Forwarded-For: a spoofed address does not make a new client", async () => {
    const clock = new ManualClock();
    await useClockFor({ "CF-Connecting-IP": "198.51.100.9" }, clock);
    const send = (i: number) =>
      exports.default.fetch("https://limiter.test/", { headers: { "CF-Connecting-IP": "198.51.100.9", "X-Forwarded-For": `10.0.0.${i}` } });
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await send(i)).status);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it("names the client's object by the key's SHA-256, never the raw key", async () => {
    const headers = { "x-api-key": "sk_live_secret_value" };
    const clientId = await useClockFor(headers, new ManualClock());
    // printf 'sk_live_secret_value' | sha256sum
    expect(clientId).toBe("key:e7673514b839222c704ad7d11f1ebcd74f5bd6fc70a285dd14bdd49fc621c8d4");
    await exports.default.fetch("https://limiter.test/", { headers });
    const stored = await runInDurableObject(env.RATE_LIMITER.getByName(clientId), (_, state) =>
      JSON.stringify(state.storage.kv.get(STATE_KEY)),
    );
    expect(stored).toContain('"level"');
    expect(stored).not.toContain("sk_live_secret_value");
  });

  it("treats an API key and the same Bearer token as one client", async () => {
    const clock = new ManualClock();
    await useClockFor({ "x-api-key": "shared-credential" }, clock);
    const viaKey = () => exports.default.fetch("https://limiter.test/", { headers: { "x-api-key": "shared-credential" } });
    const viaBearer = () => exports.default.fetch("https://limiter.test/", { headers: { Authorization: "Bearer shared-credential" } });
    expect([...(await statuses(viaKey, 3)), ...(await statuses(viaBearer, 3))]).toEqual([200, 200, 200, 200, 200, 429]);
  });
});

describe("Bearer tokens that change on every request (a refreshed JWT)", () => {
  const refreshed = (address: string) => ({ Authorization: `Bearer ${crypto.randomUUID()}`, "CF-Connecting-IP": address });

  it("are each a client of their own by default: 5 of 5 admitted against a limit of 3", async () => {
    const policy = { rules: [{ name: "jwt-default", limit: 3, period: "1m" }] };
    const clock = new ManualClock();
    expect(await statuses(() => requestWithPolicy(policy, refreshed("192.0.2.31"), clock), 5)).toEqual([200, 200, 200, 200, 200]);
  });

  it("are never identities with identity.bearer false: the client is its address, limited to 3", async () => {
    const policy = { identity: { bearer: false }, rules: [{ name: "jwt-no-bearer", limit: 3, period: "1m" }] };
    const clock = new ManualClock();
    await useClockFor({ "CF-Connecting-IP": "192.0.2.32" }, clock);
    expect(await statuses(() => requestWithPolicy(policy, refreshed("192.0.2.32"), clock), 5)).toEqual([200, 200, 200, 429, 429]);
  });
});

describe("the classic examples, on an injected clock", () => {
  it("limit 3 per 10 s: three 200s, the fourth 429, another client still 200, admitted again after the window", async () => {
    const policy = { rules: [{ name: "classic", limit: 3, period: 10 }] };
    const clock = new ManualClock();
    const alice = { "x-api-key": "alice-classic-1" };
    const bob = { "x-api-key": "bob-classic-1" };
    await useClockFor(alice, clock);
    await useClockFor(bob, clock);

    expect(await statuses(() => requestWithPolicy(policy, alice, clock), 4)).toEqual([200, 200, 200, 429]);
    expect((await requestWithPolicy(policy, bob, clock)).status).toBe(200);
    clock.advanceSeconds(10);
    expect(await statuses(() => requestWithPolicy(policy, alice, clock), 4)).toEqual([200, 200, 200, 429]);
  });

  it("burst 5 refilling 2/s: five 200s, the sixth 429, two more after 1 s", async () => {
    const policy = { rules: [{ name: "burst", limit: 2, period: "1s", burst: 5 }] };
    const clock = new ManualClock();
    const client = { "x-api-key": "burst-classic-2" };
    await useClockFor(client, clock);

    expect(await statuses(() => requestWithPolicy(policy, client, clock), 6)).toEqual([200, 200, 200, 200, 200, 429]);
    clock.advanceSeconds(1);
    expect(await statuses(() => requestWithPolicy(policy, client, clock), 3)).toEqual([200, 200, 429]);
  });
});

describe("bad identities are rejected before any object is reached", () => {
  it.each([
    { name: "no identity at all", headers: {}, detail: "no client identity" },
    { name: "an empty x-api-key", headers: { "x-api-key": "" }, detail: "x-api-key header is empty" },
    { name: "an x-api-key over 256 bytes", headers: { "x-api-key": "k".repeat(257) }, detail: "longer than 256 bytes" },
    { name: "a control character in the key", headers: { "x-api-key": "ab\u0001cd" }, detail: "control characters" },
    // workerd hands the Worker bytes that are not UTF-8 as U+FFFD: `cl\xe9` and `cl\xea` would be one client.
    { name: "a key whose bytes were not UTF-8", headers: { "x-api-key": "cl\ufffd" }, detail: "is not valid UTF-8" },
    { name: "an empty Bearer token", headers: { Authorization: "Bearer " }, detail: "Bearer token is empty" },
    { name: "a CF-Connecting-IP that is not an address", headers: { "CF-Connecting-IP": "not-an-ip" }, detail: "not an IP address" },
  ])("answers 400 problem+json for $name", async ({ headers, detail }) => {
    const response = await exports.default.fetch("https://limiter.test/", { headers });
    expect(response.status).toBe(400);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    const body = (await response.json()) as { status: number; detail: string };
    expect(body.status).toBe(400);
    expect(body.detail).toContain(detail);
    expect(response.headers.get("RateLimit")).toBeNull();
  });

  it("accepts exactly 256 bytes", async () => {
    const response = await exports.default.fetch("https://limiter.test/", { headers: { "x-api-key": "k".repeat(256) } });
    expect(response.status).toBe(200);
  });
});

describe("an invalid policy", () => {
  it.each([
    { policy: { rules: [{ name: "default", limit: 0, period: 10 }] }, problem: "rules[0].limit: must be an integer >= 1" },
    {
      policy: {
        rules: [
          { name: "a", limit: 5, period: 10 },
          { name: "b", limit: 5, period: -1 },
        ],
      },
      problem: "rules[1].period: must be at least 1 second",
    },
    { policy: "{not json", problem: "not valid JSON" },
  ])("answers 500 problem+json naming the field: $problem", async ({ policy, problem }) => {
    const raw = typeof policy === "string" ? policy : JSON.stringify(policy);
    const response = await app.request("https://limiter.test/", { headers: { "x-api-key": "k" } }, { ...env, RATE_LIMIT_POLICY: raw });
    // The client learns only an id; the policy's problems are the operator's, in the log line and from check-config.
    const invalid = loadCompiledPolicy(raw);
    expect(invalid).toBeInstanceOf(PolicyError);
    expect((invalid as PolicyError).message).toContain(problem);
    expect(await misconfigurationOf(response)).toBe(misconfigurationId((invalid as PolicyError).message));
  });
});

describe("a rule on a path, however the path is spelled", () => {
  const login = { rules: [{ name: "login-spellings", limit: 2, period: 60, match: { methods: ["POST"], path: "/login" } }] };
  const api = { rules: [{ name: "api-spellings", limit: 2, period: 60, match: { path: "/api/*" } }] };
  let clientCounter = 0;

  /** A new client's requests to `path`, through the shipped Worker on one clock with its object. */
  async function clientSending(policy: unknown, path: string, method = "POST") {
    const clock = new ManualClock();
    const headers = { "x-api-key": `spelling-client-${clientCounter++}` };
    await useClockFor(headers, clock);
    const worker = createApp({ clock });
    return () => worker.request(`https://limiter.test${path}`, { method, headers }, { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) });
  }

  it.each([
    ["/login/", "/login/"],
    ["//login", "/login"],
    ["///login", "/login"],
    ["/LOGIN", "/LOGIN"],
    ["/Login", "/Login"],
    ["/login;x", "/login;x"],
    ["/login.", "/login."],
    ["/login%20", "/login%20"],
    ["/\\login", "/login"],
    ["/%6cogin", "/login"],
  ])("limits POST %s as /login, and forwards it as %s", async (path, forwarded) => {
    const send = await clientSending(login, path);
    const first = await send();
    expect(first.status).toBe(200);
    expect(((await first.json()) as { path: string }).path).toBe(forwarded);
    expect([(await send()).status, (await send()).status]).toEqual([200, 429]);
  });

  it.each(["/api", "/API/x", "//api/x"])("limits GET %s under /api/*", async (path) => {
    const send = await clientSending(api, path, "GET");
    expect([(await send()).status, (await send()).status, (await send()).status]).toEqual([200, 200, 429]);
  });

  it.each([
    ["/%2Flogin", "encoded slash"],
    ["/login%2F", "encoded slash"],
    ["/a%5Clogin", "encoded slash or backslash"],
    ["/login%09", "control character"],
  ])("refuses %s with 400 problem+json, sending nothing to the origin", async (path, problem) => {
    const send = await clientSending(login, path);
    const refused = await send();
    expect(refused.status).toBe(400);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(((await refused.json()) as { detail: string }).detail).toContain(problem);
    expect(refused.headers.get("X-Demo-Origin")).toBeNull();
  });
});
