import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { type PolicyInput, rateLimit } from "../../src/library.ts";
import { createApp } from "../../src/worker/app.ts";
import { statuses } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

describe("rules keyed by a dimension, through the middleware", () => {
  it("counts every user of an org in the org's budget, from the keys option", async () => {
    const policy = {
      dimensions: { org: { from: "caller" as const } },
      rules: [
        { name: "mw-per-user", limit: 10, period: "1h" },
        { name: "mw-per-org", key: "org", limit: 3, period: "1h" },
      ],
    } satisfies PolicyInput;
    const app = new Hono();
    app.use("*", rateLimit({ policy, prefix: "mw-dimensions", clock: new ManualClock(), keys: (c) => ({ org: c.req.header("x-org") }) }));
    app.get("*", (c) => c.text("ok"));
    const send = (user: string, org: string) => () => app.request("/", { headers: { "x-api-key": `mw-${user}`, "x-org": org } }, env);
    expect(await statuses(send("a", "acme"), 2)).toEqual([200, 200]);
    expect(await statuses(send("b", "acme"), 2)).toEqual([200, 429]);
    const denied = await send("c", "acme")();
    expect(denied.status).toBe(429);
    expect(((await denied.json()) as { "violated-policies": string[] })["violated-policies"]).toEqual(["mw-per-org"]);
    expect((await send("c", "globex")()).status).toBe(200);
    const missing = await app.request("/", { headers: { "x-api-key": "mw-d" } }, env);
    expect(missing.status).toBe(400);
    expect(missing.headers.get("Content-Type")).toBe("application/problem+json");
    expect(((await missing.json()) as { detail: string }).detail).toBe(
      'the "org" dimension (keys.org) has no value, and its rules need one',
    );
  });

  it("counts an org under the tier the keys option gives with its key, its cached denials apart from another tier's", async () => {
    const policy = {
      dimensions: { org: { from: "caller" as const } },
      tiers: { team: { "mw-tiered-org": { limit: 4 } } },
      rules: [
        { name: "mw-tiered-user", limit: 100, period: "1h" },
        { name: "mw-tiered-org", key: "org", limit: 2, period: "1h" },
      ],
    } satisfies PolicyInput;
    const app = new Hono();
    const keys = (c: { req: { header(name: string): string | undefined } }) => {
      const key = c.req.header("x-org") as string;
      const tier = c.req.header("x-plan");
      return { org: tier === undefined ? key : { key, tier } };
    };
    app.use("*", rateLimit({ policy, prefix: "mw-dimension-tiers", clock: new ManualClock(), keys }));
    app.get("*", (c) => c.text("ok"));
    const send = (org: string, plan?: string) => () =>
      app.request("/", { headers: { "x-api-key": "mw-tiered", "x-org": org, ...(plan ? { "x-plan": plan } : {}) } }, env);
    expect(await statuses(send("initech"), 3)).toEqual([200, 200, 429]);
    expect(await statuses(send("initech", "team"), 3)).toEqual([200, 200, 429]);
    const unknown = await send("initech", "gold")();
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { detail: string }).detail).toBe("keys.org.tier must be one of the policy's tiers: team");
  });

  it("limits an address before the random API keys it invents, in the shipped Worker with no code", async () => {
    const policy = {
      rules: [
        { name: "w-per-key", limit: 100, period: "1h" },
        { name: "w-per-ip", key: "ip", limit: 3, period: "1h" },
      ],
    };
    const worker = createApp({ clock: new ManualClock() });
    const send = (address: string) => () =>
      worker.request(
        "https://limiter.test/",
        { headers: { "x-api-key": crypto.randomUUID(), "CF-Connecting-IP": address } },
        { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) },
      );
    expect(await statuses(send("198.51.100.77"), 4)).toEqual([200, 200, 200, 429]);
    expect((await send("198.51.100.78")()).status).toBe(200);
  });
});

describe("dimensions read from the body", () => {
  const loginPolicy = {
    dimensions: {
      email: { from: "body" as const, field: "email", lowercase: true },
      "email-ip": { from: "combined" as const, of: ["email", "ip"] },
    },
    rules: [
      { name: "body-per-client", limit: 100, period: "1h" },
      { name: "body-per-email", key: "email", limit: 3, period: "15m", match: { methods: ["POST"], path: "/login" } },
      { name: "body-per-email-ip", key: "email-ip", limit: 2, period: "15m", match: { methods: ["POST"], path: "/login" } },
    ],
  } satisfies PolicyInput;

  /** An app whose handler reads the body the limiter read before it. */
  function loginApp(prefix: string) {
    const app = new Hono();
    app.use("*", rateLimit({ policy: loginPolicy, prefix, clock: new ManualClock() }));
    app.post("/login", async (c) => c.json({ handlerGot: await c.req.text() }));
    return app;
  }
  const post = (app: Hono, body: BodyInit, type: string, address = "192.0.2.1") =>
    app.request("/login", { method: "POST", body, headers: { "content-type": type, "CF-Connecting-IP": address } }, env);

  it("counts a JSON body's email, lower-cased, and leaves the body for the handler", async () => {
    const app = loginApp("body-json");
    const body = JSON.stringify({ email: "Alice@Example.com", password: "hunter2" });
    const first = await post(app, body, "application/json");
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ handlerGot: body });
    const alike = JSON.stringify({ email: "alice@example.COM" });
    expect((await post(app, alike, "application/json; charset=utf-8")).status).toBe(200);
    const third = await post(app, alike, "application/json");
    expect(third.status).toBe(429);
    expect(((await third.json()) as { "violated-policies": string[] })["violated-policies"]).toEqual(["body-per-email-ip"]);
    // From another address the pair is new, and the email has one attempt left of its 3.
    expect((await post(app, alike, "application/json", "192.0.2.2")).status).toBe(200);
    const fourth = await post(app, alike, "application/json", "192.0.2.3");
    expect(fourth.status).toBe(429);
    expect(((await fourth.json()) as { "violated-policies": string[] })["violated-policies"]).toEqual(["body-per-email"]);
    expect((await post(app, JSON.stringify({ email: "bob@example.com" }), "application/json")).status).toBe(200);
  });

  it("reads a JSON body whatever its Content-Type says, as request.json() would", async () => {
    const app = loginApp("body-any-type");
    const body = JSON.stringify({ email: "pat@example.com" });
    for (const type of ["text/plain", "application/vnd.api+json"]) expect((await post(app, body, type)).status).toBe(200);
    expect((await post(app, body, "text/plain")).status).toBe(429);
  });

  it("reads URL-encoded and multipart forms alike", async () => {
    const app = loginApp("body-forms");
    expect((await post(app, "email=carol%40example.com&password=x", "application/x-www-form-urlencoded")).status).toBe(200);
    const form = new FormData();
    form.set("email", "carol@example.com");
    expect((await app.request("/login", { method: "POST", body: form, headers: { "CF-Connecting-IP": "192.0.2.1" } }, env)).status).toBe(
      200,
    );
    expect((await post(app, "email=carol%40example.com", "application/x-www-form-urlencoded")).status).toBe(429);
  });

  it.each([
    [
      "no email field",
      JSON.stringify({ user: "x" }),
      "application/json",
      400,
      'the "email" dimension (body field email) has no value, and its rules need one',
    ],
    [
      "a body that is not JSON",
      "{email:",
      "application/json",
      400,
      'the "email" dimension (body field email) has no value, and its rules need one',
    ],
    [
      "a body of another type",
      "email=dave@example.com",
      "text/plain",
      400,
      'the "email" dimension (body field email) has no value, and its rules need one',
    ],
    [
      "an email that is not a string",
      JSON.stringify({ email: ["a", "b"] }),
      "application/json",
      400,
      'the "email" dimension (body field email) must be a string (got object)',
    ],
    [
      "a form naming two emails",
      "email=eve%40example.com&email=alice%40example.com",
      "application/x-www-form-urlencoded",
      400,
      'the "email" dimension (body field email) is given more than once',
    ],
    [
      "a body over 64 KiB",
      JSON.stringify({ email: "frank@example.com", pad: "x".repeat(70_000) }),
      "application/json",
      413,
      "the body is larger than the 65536 bytes the limiter reads for a dimension's field",
    ],
  ])("answers %s with a problem naming what is wrong", async (_, body, type, status, detail) => {
    const response = await post(loginApp("body-problems"), body, type);
    expect(response.status).toBe(status);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(((await response.json()) as { detail: string }).detail).toBe(detail);
  });

  it("sends the origin the body it read the email from, whole, in the shipped Worker", async () => {
    const worker = createApp({ clock: new ManualClock() });
    const policy = {
      dimensions: { email: { from: "body", field: "email" } },
      rules: [{ name: "w-per-email", key: "email", limit: 1, period: "1h" }],
    };
    const body = JSON.stringify({ email: "grace@example.com", note: "y".repeat(20_000) });
    const send = () =>
      worker.request(
        "https://limiter.test/login",
        { method: "POST", body, headers: { "content-type": "application/json", "CF-Connecting-IP": "192.0.2.9" } },
        { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) },
      );
    const admitted = await send();
    expect(admitted.status).toBe(200);
    expect(((await admitted.json()) as { receivedBody: string }).receivedBody).toBe(body);
    expect((await send()).status).toBe(429);
  });
});
