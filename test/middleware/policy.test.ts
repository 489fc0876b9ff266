import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashSecret } from "../../src/identity/secret.ts";
import type { RateLimiter } from "../../src/object/rate-limiter.ts";
import { GLOBAL_OBJECT } from "../../src/object-client/object-name.ts";
import { createApp } from "../../src/worker/app.ts";
import { useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const app = createApp();
/** Each client's requests go through a Worker on the same clock as its object. */
const appsByClient = new WeakMap<object, ReturnType<typeof createApp>>();
let clientCounter = 0;

/** A new client (its own API key) whose object, and Worker, run on `clock`. */
async function newClient(clock: ManualClock): Promise<Record<string, string>> {
  clientCounter += 1;
  const headers = { "x-api-key": `policy-client-${clientCounter}` };
  await useClockFor(headers, clock);
  appsByClient.set(headers, createApp({ clock }));
  return headers;
}

async function useGlobalClock(clock: ManualClock): Promise<void> {
  await runInDurableObject(env.RATE_LIMITER.getByName(GLOBAL_OBJECT), (limiter: RateLimiter) => {
    limiter.clock = clock;
  });
}

function send(policy: unknown, headers: Record<string, string>, init: { method?: string; path?: string } = {}) {
  return (appsByClient.get(headers) ?? app).request(
    `https://limiter.test${init.path ?? "/"}`,
    { method: init.method ?? "GET", headers },
    { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) },
  );
}

async function statuses(count: number, request: () => Response | Promise<Response>): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < count; i++) result.push((await request()).status);
  return result;
}

describe("several rules on one request", () => {
  const policy = {
    rules: [
      { name: "per-second", limit: 2, period: "1s" },
      { name: "per-minute", limit: 3, period: "1m" },
    ],
  };

  it("admits only if every rule admits, and then charges all of them", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    expect(await statuses(3, () => send(policy, client))).toEqual([200, 200, 429]);
    clock.advanceSeconds(1);
    // The per-minute rule has one left: had the denied request been charged to it, this would be 429.
    const third = await send(policy, client);
    expect(third.status).toBe(200);
    expect(third.headers.get("RateLimit")).toBe('"per-second";r=1;t=1, "per-minute";r=0;t=59');
    const denied = await send(policy, client);
    expect(denied.status).toBe(429);
    expect(await denied.json()).toMatchObject({ "violated-policies": ["per-minute"] });
  });

  it("lists every violated rule and takes the latest Retry-After", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    const both = {
      rules: [
        { name: "one-per-second", limit: 1, period: "1s" },
        { name: "one-per-minute", limit: 1, period: "1m" },
      ],
    };
    expect((await send(both, client)).status).toBe(200);
    const denied = await send(both, client);
    expect(denied.status).toBe(429);
    expect(await denied.json()).toMatchObject({ "violated-policies": ["one-per-second", "one-per-minute"] });
    expect(denied.headers.get("Retry-After")).toBe("60");
  });

  it("applies a rule only to the methods and paths it matches", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    const matched = { rules: [{ name: "exports", limit: 1, period: "1h", match: { methods: ["GET"], path: "/v1/*/export" } }] };
    expect((await send(matched, client, { path: "/v1/reports/export" })).status).toBe(200);
    expect((await send(matched, client, { path: "/v1/reports/export" })).status).toBe(429);
    const unlimited = await send(matched, client, { path: "/v1/reports" });
    expect(unlimited.status).toBe(200);
    expect(unlimited.headers.get("RateLimit-Policy")).toBeNull();
    expect((await send(matched, client, { method: "POST", path: "/v1/reports/export" })).status).toBe(200);
  });

  it("limits HEAD under a rule that lists GET: the GET handler answers it", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    const reads = { rules: [{ name: "reads-and-heads", limit: 2, period: "1m", match: { methods: ["GET"] } }] };
    const statusesOf = [];
    for (const method of ["HEAD", "GET", "HEAD"]) statusesOf.push((await send(reads, client, { method })).status);
    expect(statusesOf).toEqual([200, 200, 429]);
  });
});

describe("legacy headers", () => {
  it("sends X-RateLimit-* for the most restrictive rule by default, and not when switched off", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    const rules = [
      { name: "wide", limit: 100, period: "1m" },
      { name: "narrow", limit: 3, period: "1m" },
    ];
    const response = await send({ rules }, client);
    expect([
      response.headers.get("X-RateLimit-Limit"),
      response.headers.get("X-RateLimit-Remaining"),
      response.headers.get("X-RateLimit-Reset"),
    ]).toEqual(["3", "2", "20"]);
    const quiet = await send({ rules, legacyHeaders: false }, client);
    expect(quiet.headers.get("X-RateLimit-Limit")).toBeNull();
    expect(quiet.headers.get("RateLimit")).not.toBeNull();
  });
});

describe("shadow mode", () => {
  it("decides and reports a shadow rule but never blocks on it", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    const policy = {
      rules: [
        { name: "enforced", limit: 10, period: "1m" },
        { name: "candidate", limit: 2, period: "1m", mode: "shadow" },
      ],
    };
    const codes = await statuses(4, () => send(policy, client));
    expect(codes).toEqual([200, 200, 200, 200]);
    const fifth = await send(policy, client);
    expect(fifth.status).toBe(200);
    expect(fifth.headers.get("RateLimit")).toBe('"enforced";r=5;t=30, "candidate";r=0;t=60');
  });
});

describe("tiers", () => {
  it("gives a client mapped to a tier that tier's limits", async () => {
    const clock = new ManualClock();
    const pro = await newClient(clock);
    const free = await newClient(clock);
    const policy = {
      rules: [{ name: "tiered", limit: 2, period: "1m" }],
      tiers: { pro: { tiered: { limit: 4 } } },
      clients: { [`key:${await hashSecret(pro["x-api-key"] ?? "")}`]: "pro" },
    };
    expect(await statuses(5, () => send(policy, pro))).toEqual([200, 200, 200, 200, 429]);
    expect(await statuses(3, () => send(policy, free))).toEqual([200, 200, 429]);
  });
});

describe("allow and deny lists", () => {
  it("answers 403 problem+json to a denied client or range and never limits an allowed one", async () => {
    const clock = new ManualClock();
    const allowed = await newClient(clock);
    const policy = {
      rules: [{ name: "api", limit: 1, period: "1m" }],
      allow: [`key:${await hashSecret(allowed["x-api-key"] ?? "")}`, "10.0.0.0/8"],
      deny: ["192.0.2.0/24"],
    };
    expect(await statuses(3, () => send(policy, allowed))).toEqual([200, 200, 200]);
    expect(await statuses(3, () => send(policy, { "CF-Connecting-IP": "10.1.2.3" }))).toEqual([200, 200, 200]);
    const denied = await send(policy, { "CF-Connecting-IP": "192.0.2.77" });
    expect(denied.status).toBe(403);
    expect(denied.headers.get("Content-Type")).toBe("application/problem+json");
    const deniedWithKey = await send(policy, { "CF-Connecting-IP": "192.0.2.78", "x-api-key": "a-key-from-a-denied-range" });
    expect(deniedWithKey.status).toBe(403);
  });
});

describe("a global rule", () => {
  it("shares one budget across clients and refunds the client's charge when it denies, so nothing is lost or over-charged", async () => {
    const clock = new ManualClock();
    await useGlobalClock(clock);
    const policy = {
      rules: [
        { name: "per-client", limit: 3, period: "1m" },
        { name: "origin-cap-refund", limit: 4, period: "1m", scope: "global" },
      ],
    };
    const alice = await newClient(clock);
    const bob = await newClient(clock);
    expect(await statuses(3, () => send(policy, alice))).toEqual([200, 200, 200]);
    expect(await statuses(2, () => send(policy, bob))).toEqual([200, 429]);
    const denied = await send(policy, bob);
    expect(await denied.json()).toMatchObject({ "violated-policies": ["origin-cap-refund"] });
    // Bob was admitted once: his two denied requests were refunded (by his object, or by his lease in this
    // isolate), so he has exactly 2 left.
    expect(await statuses(3, () => send({ rules: [{ name: "per-client", limit: 3, period: "1m" }] }, bob))).toEqual([200, 200, 429]);
  });

  it("is not charged when the client's own rules deny", async () => {
    const clock = new ManualClock();
    await useGlobalClock(clock);
    const policy = {
      rules: [
        { name: "one-per-client", limit: 1, period: "1m" },
        { name: "origin-cap-kept", limit: 3, period: "1m", scope: "global" },
      ],
    };
    const carol = await newClient(clock);
    expect(await statuses(4, () => send(policy, carol))).toEqual([200, 429, 429, 429]);
    const dave = await newClient(clock);
    const admitted = await send(policy, dave);
    expect(admitted.headers.get("RateLimit")).toBe('"one-per-client";r=0;t=60, "origin-cap-kept";r=1;t=40');
  });
});

describe("when the object cannot answer", () => {
  /** Keeps the client's object from answering for `ms` (its input gate closed), so calls to it time out. */
  async function stall(headers: Record<string, string>, ms: number): Promise<{ held: Promise<unknown> }> {
    const id = `key:${await hashSecret(headers["x-api-key"] ?? "")}`;
    const held = runInDurableObject(env.RATE_LIMITER.getByName(id), (_: RateLimiter, state) =>
      state.blockConcurrencyWhile(() => new Promise((resolve) => setTimeout(resolve, ms))),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Wrapped: an async function returning the promise itself would wait for it.
    return { held };
  }

  it("admits with onError allow (the default), and says so in a header", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    const { held } = await stall(client, 400);
    const response = await send({ rules: [{ name: "api", limit: 1, period: "1m" }], objectTimeoutMs: 50 }, client);
    await held;
    expect(response.status).toBe(200);
    expect(response.headers.get("X-RateLimit-Degraded")).toBe('"api"');
    expect(response.headers.get("RateLimit-Policy")).toBe('"api";q=1;w=60');
  });

  it("answers 503 problem+json with onError deny", async () => {
    const clock = new ManualClock();
    const client = await newClient(clock);
    const { held } = await stall(client, 400);
    const response = await send({ rules: [{ name: "api", limit: 1, period: "1m", onError: "deny" }], objectTimeoutMs: 50 }, client);
    await held;
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("1");
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ status: 503, "violated-policies": ["api"] });
  });
});
