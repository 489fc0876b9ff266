import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { type PolicyInput, rateLimit } from "../../src/library.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { useClock } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

interface User {
  id: string;
  plan: "free" | "pro";
}

let apps = 0;

/**
 * An app with its own auth in front of the limiter: a fresh JWT-like token on every request (`x-token`), whose user
 * is `x-user`. The limiter keys on the user, as `rateLimit({ key })` lets an app do. Each app has its own prefix.
 */
async function appWith(options: Parameters<typeof rateLimit<{ Variables: { user: User } }>>[0], users: string[]) {
  apps += 1;
  const prefix = `options-${apps}`;
  const clock = new ManualClock();
  for (const user of users) await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, await UNKEYED_HASHER.clientId(user))), clock);
  const app = new Hono<{ Variables: { user: User } }>();
  app.use("*", async (c, next) => {
    c.set("user", { id: c.req.header("x-user") ?? "", plan: c.req.header("x-plan") === "pro" ? "pro" : "free" });
    await next();
  });
  app.get("/health", (c) => c.text("ok"));
  app.use("*", rateLimit<{ Variables: { user: User } }>({ clock, prefix, ...options }));
  app.all("*", (c) => c.json({ remaining: c.get("rateLimit")?.rules[0]?.remaining }));
  const send = (user: string, headers: Record<string, string> = {}, path = "/api") =>
    app.request(`https://app.test${path}`, { headers: { "x-user": user, "x-token": crypto.randomUUID(), ...headers } }, env);
  return { app, send, clock };
}

const POLICY = {
  rules: [{ name: "per-user", limit: 3, period: "1m" }],
  tiers: { pro: { "per-user": { limit: 30 } } },
} satisfies PolicyInput;

describe("rateLimit() options", () => {
  it("keys on what the app knows (key): a user whose token changes on every request is one client", async () => {
    const { send } = await appWith({ policy: POLICY, key: (c) => c.get("user").id }, ["user-a", "user-b"]);
    const statuses = [];
    // A Bearer token refreshed on every request would be a new client each time under the default identity.
    for (let i = 0; i < 5; i++) statuses.push((await send("user-a", { Authorization: `Bearer ${crypto.randomUUID()}` })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect((await send("user-b")).status).toBe(200);
  });

  it.each([
    ["an empty key", () => "", "the key option's key is empty"],
    ["a key that is not a string", () => 42 as unknown as string, "the key option gave number, not a string"],
    ["a key over 256 bytes", () => "k".repeat(257), "the key option's key is longer than 256 bytes"],
  ])("answers %s 400 naming the key option, never a shared bucket", async (_, key, detail) => {
    const { send } = await appWith({ policy: POLICY, key }, []);
    const response = await send("anyone");
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toBe(detail);
  });

  it("applies the tier the app gives (tier), and answers 400 naming the option for a tier the policy lacks", async () => {
    const { send } = await appWith(
      { policy: POLICY, key: (c) => c.get("user").id, tier: (c) => (c.get("user").plan === "pro" ? "pro" : undefined) },
      ["pro-user", "free-user"],
    );
    expect(await (await send("pro-user", { "x-plan": "pro" })).json()).toEqual({ remaining: 29 });
    expect(await (await send("free-user")).json()).toEqual({ remaining: 2 });
    const { send: sendUnknown } = await appWith({ policy: POLICY, key: (c) => c.get("user").id, tier: () => "gold" }, []);
    const unknown = await sendUnknown("someone");
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { detail: string }).detail).toBe('the tier option gave "gold", not one of the policy\'s tiers (pro)');
  });

  it("answers 400 naming the cost option when it gives what cannot be a cost, such as a client's bad header", async () => {
    const { send } = await appWith({ policy: POLICY, key: (c) => c.get("user").id, cost: (c) => Number(c.req.header("x-tokens")) }, []);
    const response = await send("costly", { "x-tokens": "lots" });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toBe(
      "the cost option gave NaN, not a whole number from 1 to 1000000000",
    );
  });

  it("keeps a tier's cached denials apart: a user upgraded after a denial is admitted at once", async () => {
    const { send } = await appWith(
      { policy: POLICY, key: (c) => c.get("user").id, tier: (c) => (c.get("user").plan === "pro" ? "pro" : undefined) },
      ["upgrading-user"],
    );
    for (let i = 0; i < 3; i++) await send("upgrading-user");
    expect((await send("upgrading-user")).status).toBe(429);
    expect((await send("upgrading-user")).status).toBe(429);
    expect((await send("upgrading-user", { "x-plan": "pro" })).status).toBe(200);
  });

  it("charges the cost the app gives (cost), and a denial at one cost never denies a smaller one that fits", async () => {
    const policy = { rules: [{ name: "tokens", algorithm: "fixed-window", limit: 10, period: "1m" }] } satisfies PolicyInput;
    const { send } = await appWith({ policy, key: (c) => c.get("user").id, cost: (c) => Number(c.req.header("x-tokens") ?? 1) }, ["llm"]);
    expect(await (await send("llm", { "x-tokens": "7" })).json()).toEqual({ remaining: 3 });
    expect((await send("llm", { "x-tokens": "5" })).status).toBe(429);
    expect((await send("llm", { "x-tokens": "5" })).status).toBe(429);
    expect(await (await send("llm", { "x-tokens": "3" })).json()).toEqual({ remaining: 0 });
  });

  it("lets through what the app skips (skip), counting nothing", async () => {
    const { send } = await appWith({ policy: POLICY, key: (c) => c.get("user").id, skip: (c) => c.req.path === "/internal" }, ["skipper"]);
    for (let i = 0; i < 5; i++) expect((await send("skipper", {}, "/internal")).status).toBe(200);
    expect(await (await send("skipper")).json()).toEqual({ remaining: 2 });
  });

  it("answers denials the app's own way (onDenied), with the limiter's headers, repeated denials included", async () => {
    const { send } = await appWith(
      {
        policy: POLICY,
        key: (c) => c.get("user").id,
        onDenied: (c, decision) => c.json({ error: "slow down", rule: decision.rules.find((rule) => !rule.allowed)?.name }, 429),
      },
      ["denied-user"],
    );
    for (let i = 0; i < 3; i++) await send("denied-user");
    for (let i = 0; i < 2; i++) {
      // The first from the object, the second from the isolate's cache of denials.
      const denied = await send("denied-user");
      expect(denied.status).toBe(429);
      expect(denied.headers.get("Content-Type")).toMatch(/^application\/json/);
      expect(await denied.json()).toEqual({ error: "slow down", rule: "per-user" });
      expect(denied.headers.get("Retry-After")).toBe("20");
      expect(denied.headers.get("RateLimit-Policy")).toBe('"per-user";q=3;w=60');
    }
  });

  it("answers through onDenied even behind front(), which then leaves every denial to the middleware", async () => {
    apps += 1;
    const clock = new ManualClock();
    const prefix = `options-front-${apps}`;
    const headers = { "x-api-key": "front-denied" };
    await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, await UNKEYED_HASHER.clientId("front-denied"))), clock);
    const limiter = rateLimit({ policy: POLICY, clock, prefix, onDenied: (c) => c.text("custom denial", 429) });
    const app = new Hono();
    app.use("*", limiter);
    app.all("*", (c) => c.text("ok"));
    const fronted = limiter.front(app);
    for (let i = 0; i < 3; i++) expect((await fronted.request("/x", { headers }, env)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect(await (await fronted.request("/x", { headers }, env)).text()).toBe("custom denial");
  });
});
