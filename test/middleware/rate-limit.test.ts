import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, expectTypeOf, it, vi } from "vitest";
import { type Decision, type RateLimitVariables, rateLimit } from "../../src/library.ts";
import { meter, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const policy = { rules: [{ name: "tiny", limit: 1, period: "10s" }] };

/**
 * A user's own app: a health route before the limiter, a probe that records every request the app
 * routes to the limiter, the limiter on every other request, and one route that shows its decision.
 */
function ownApp(clock: ManualClock) {
  const limiter = rateLimit({ policy, clock });
  const app = new Hono<{ Variables: RateLimitVariables }>();
  const routed: string[] = [];
  app.get("/health", (c) => c.text("healthy"));
  app.use("*", async (c, next) => {
    routed.push(`${c.req.method} ${c.req.path}`);
    await next();
  });
  app.use("*", limiter);
  app.all("*", (c) => c.json({ remaining: c.get("rateLimit")?.rules[0]?.remaining }));
  return { app, limiter, routed };
}

async function describeResponse(response: Response) {
  return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
}

describe("rateLimit() in your own Hono app", () => {
  it("passes admitted requests on with their decision, and answers repeated denials from memory", async () => {
    const clock = new ManualClock();
    const { app } = ownApp(clock);
    const headers = { "x-api-key": "own-app-client" };
    await useClockFor(headers, clock);
    const send = () => app.request("https://api.test/things", { headers }, env);

    const admitted = await send();
    expect(admitted.status).toBe(200);
    expect(await admitted.json()).toEqual({ remaining: 0 });
    expect(admitted.headers.get("RateLimit")).toBe('"tiny";r=0;t=10');
    expect((await send()).status).toBe(429);
    const checks = meter.decisions;
    for (let i = 0; i < 5; i++) expect((await send()).status).toBe(429);
    expect(meter.decisions).toBe(checks);
  });
});

describe("the rateLimit context variable", () => {
  it("is typed in any Hono app, without generics, as Hono's own middleware are", async () => {
    const app = new Hono();
    app.use("*", rateLimit({ policy: { rules: [{ name: "typed", limit: 5, period: "1m" }] } }));
    app.get("/", (c) => {
      expectTypeOf(c.get("rateLimit")).toEqualTypeOf<Decision | undefined>();
      return c.json({ remaining: c.get("rateLimit")?.rules[0]?.remaining });
    });
    const response = await app.request("https://api.test/", { headers: { "x-api-key": "typed-context" } }, env);
    expect(await response.json()).toEqual({ remaining: 4 });
  });
});

describe("rateLimit() misconfigured", () => {
  it("answers 500 naming the Durable Object binding when it is missing, and logs it", async () => {
    const { app } = ownApp(new ManualClock());
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const response = await app.request("https://api.test/", { headers: { "x-api-key": "no-binding" } }, {});
      expect(response.status).toBe(500);
      expect(((await response.json()) as { detail: string }).detail).toBe("the Durable Object binding RATE_LIMITER is not configured");
      expect(errors).toHaveBeenCalledWith(JSON.stringify({ event: "binding-missing", binding: "RATE_LIMITER" }));
    } finally {
      errors.mockRestore();
    }
  });
});

describe("front(): repeated denials answered before the app routes the request", () => {
  it("answers them with the response the middleware gives, without routing them", async () => {
    const clock = new ManualClock();
    const { app, limiter, routed } = ownApp(clock);
    const worker = limiter.front(app);
    const headers = { "x-api-key": "front-client" };
    await useClockFor(headers, clock);
    const send = (via: { request: typeof worker.request }) => via.request("https://api.test/things", { headers }, env);

    expect((await send(worker)).status).toBe(200);
    expect((await send(worker)).status).toBe(429); // the object's denial, now cached
    expect(routed).toEqual(["GET /things", "GET /things"]);
    clock.advanceMs(3_000);
    const checks = meter.decisions;
    const fromFront = await describeResponse(await send(worker));
    expect(routed).toHaveLength(2);
    const fromMiddleware = await describeResponse(await send(app));
    expect(routed).toHaveLength(3);
    expect(fromFront).toEqual(fromMiddleware);
    expect(fromFront.status).toBe(429);
    expect(fromFront.headers["retry-after"]).toBe("7");
    expect(meter.decisions).toBe(checks);

    clock.advanceMs(7_000);
    expect((await send(worker)).status).toBe(200);
    expect(routed).toHaveLength(4);
  });

  it("leaves to the app what bypass picks out, HEAD requests and other clients", async () => {
    const clock = new ManualClock();
    const { app, limiter, routed } = ownApp(clock);
    const worker = limiter.front(app, { bypass: (request, path) => request.method === "GET" && path === "/health" });
    const headers = { "x-api-key": "front-bypass-client" };
    await useClockFor(headers, clock);
    await useClockFor({ "x-api-key": "front-other-client" }, clock);
    await worker.request("https://api.test/", { headers }, env);
    expect((await worker.request("https://api.test/", { headers }, env)).status).toBe(429);

    const health = await worker.request("https://api.test/health", { headers }, env);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("healthy");
    const head = await worker.request("https://api.test/", { method: "HEAD", headers }, env);
    expect(head.status).toBe(429);
    expect(await head.text()).toBe("");
    expect(routed).toEqual(["GET /", "GET /", "HEAD /"]);
    const other = await worker.request("https://api.test/", { headers: { "x-api-key": "front-other-client" } }, env);
    expect(other.status).toBe(200);
  });

  it("hashes a new key once, though it looks the client up before the app does", async () => {
    const clock = new ManualClock();
    const { app, limiter } = ownApp(clock);
    const worker = limiter.front(app);
    // Another client's cached denial, so that front() looks every request up.
    const neighbour = { "x-api-key": "front-denied-neighbour" };
    await useClockFor(neighbour, clock);
    await worker.request("https://api.test/", { headers: neighbour }, env);
    expect((await worker.request("https://api.test/", { headers: neighbour }, env)).status).toBe(429);

    const digest = vi.spyOn(crypto.subtle, "digest");
    try {
      const response = await worker.request("https://api.test/", { headers: { "x-api-key": "front-brand-new-key" } }, env);
      expect(response.status).toBe(200);
      expect(digest).toHaveBeenCalledTimes(1);
    } finally {
      digest.mockRestore();
    }
  });

  it("matches rules on the path as the app routes it", async () => {
    const clock = new ManualClock();
    const limiter = rateLimit({ policy: { rules: [{ name: "writes", limit: 1, period: "10s", match: { path: "/api/*" } }] }, clock });
    // An app that routes on the host as well: its paths are not the URL's.
    const app = new Hono({ getPath: (request) => `/${new URL(request.url).hostname.split(".")[0]}${new URL(request.url).pathname}` });
    app.use("*", limiter);
    app.all("*", (c) => c.text(c.req.path));
    const worker = limiter.front(app);
    const headers = { "x-api-key": "front-host-client" };
    await useClockFor(headers, clock);

    expect((await worker.request("https://api.example.test/a", { headers }, env)).status).toBe(200);
    expect((await worker.request("https://api.example.test/a", { headers }, env)).status).toBe(429);
    expect((await worker.request("https://api.example.test/b", { headers }, env)).status).toBe(429);
    const elsewhere = await worker.request("https://www.example.test/api/a", { headers }, env);
    expect(elsewhere.status).toBe(200);
    expect(await elsewhere.text()).toBe("/www/api/a");
  });
});
