import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, expectTypeOf, it, vi } from "vitest";
import { misconfigurationId } from "../../src/http/problem.ts";
import { type Decision, identifyClient, type RateLimitVariables, rateLimit } from "../../src/library.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { meter, misconfigurationOf, useClock, useClockFor } from "../client.ts";
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
      expect(await misconfigurationOf(response)).toBe(misconfigurationId("the Durable Object binding RATE_LIMITER is not configured"));
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

describe("front() of one rateLimit() in an app that has two", () => {
  it("hands its screening to its own middleware only: another one in the chain screens the request for its own rules", async () => {
    const clock = new ManualClock();
    const outer = rateLimit({ policy: { rules: [{ name: "front-outer", limit: 1, period: "1m" }] }, prefix: "front-outer", clock });
    const inner = rateLimit({ policy: { rules: [{ name: "front-inner", limit: 2, period: "1m" }] }, prefix: "front-inner", clock });
    const app = new Hono();
    app.use("*", outer);
    app.use("*", inner);
    app.all("*", (c) => c.text("ok"));
    // The inner one's front(): the outer middleware sees the request first.
    const worker = inner.front(app);
    const headers = { "x-api-key": "front-two-limiters" };
    const neighbour = { "x-api-key": "front-two-limiters-neighbour" };
    for (const client of [headers, neighbour]) {
      const identity = await identifyClient(new Headers(client));
      if (!("clientId" in identity)) throw new Error(identity.problem);
      for (const prefix of ["front-outer", "front-inner"])
        await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, identity.clientId)), clock);
    }
    // A neighbour's cached denial, so that front() screens every request and passes its screening on.
    for (let i = 0; i < 2; i++) await worker.request("https://api.test/", { headers: neighbour }, env);
    expect((await worker.request("https://api.test/", { headers: neighbour }, env)).status).toBe(429);

    expect((await worker.request("https://api.test/", { headers }, env)).status).toBe(200);
    // Had the outer middleware taken the inner's screening, it would have decided "front-inner" (2 a minute) in its
    // own objects, and admitted this too.
    const second = await worker.request("https://api.test/", { headers }, env);
    expect(second.status).toBe(429);
    expect(((await second.json()) as { "violated-policies": string[] })["violated-policies"]).toEqual(["front-outer"]);
  });
});

describe("two rateLimit() in one app whose rules share a name", () => {
  const limitOf = (limit: number) => ({ rules: [{ name: "shared-name", limit, period: "1m" }] });
  const headers = (client: string) => ({ "x-api-key": `two-limiters-${client}` });

  /** `/a/*` allows 1 per minute, `/b/*` 100, both under the rule name "shared-name". */
  function twoLimiters(prefixes: { a?: string; b?: string }) {
    const app = new Hono();
    app.use("/a/*", rateLimit({ policy: limitOf(1), ...(prefixes.a ? { prefix: prefixes.a } : {}) }));
    app.use("/b/*", rateLimit({ policy: limitOf(100), ...(prefixes.b ? { prefix: prefixes.b } : {}) }));
    app.all("*", (c) => c.text("ok"));
    return app;
  }

  it("keeps their buckets, denials and leases apart when each has its own prefix: /a admits 1 of 6 while /b admits all", async () => {
    const app = twoLimiters({ a: "limiter-a", b: "limiter-b" });
    const statuses: Record<string, number[]> = { a: [], b: [] };
    for (let i = 0; i < 6; i++) {
      for (const route of ["a", "b"] as const) {
        statuses[route]?.push((await app.request(`https://api.test/${route}/x`, { headers: headers("prefixed") }, env)).status);
      }
    }
    expect(statuses).toEqual({ a: [200, 429, 429, 429, 429, 429], b: [200, 200, 200, 200, 200, 200] });
  });

  it("refuses the second definition at its first request, with a 500 and a log line naming the rule and both", async () => {
    const app = twoLimiters({ a: "refused" });
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      expect((await app.request("https://api.test/a/x", { headers: headers("refused") }, env)).status).toBe(200);
      // "/b" has no prefix: its "shared-name" is the first one without a prefix, so it is not refused either.
      expect((await app.request("https://api.test/b/x", { headers: headers("refused") }, env)).status).toBe(200);
      const clash = twoLimiters({});
      expect((await clash.request("https://api.test/b/x", { headers: headers("refused") }, env)).status).toBe(200);
      const refused = await clash.request("https://api.test/a/x", { headers: headers("refused") }, env);
      const id = await misconfigurationOf(refused);
      const logged = errors.mock.calls.map(([line]) => JSON.parse(String(line)));
      const { detail } = logged.find((entry) => entry.event === "misconfigured" && entry.id === id) as { detail: string };
      expect(detail).toContain('rule "shared-name" is defined twice in this Worker without a prefix');
      expect(detail).toContain('"limit":100');
      expect(detail).toContain('"limit":1,');
      expect(detail).toContain("`prefix`");
      expect(logged).toContainEqual({
        event: "rule-defined-twice",
        rule: "shared-name",
        definitions: [expect.stringContaining('"limit":100'), expect.stringContaining('"limit":1,')],
      });
    } finally {
      errors.mockRestore();
    }
  });

  it("shares a bucket on purpose when both define the rule alike", async () => {
    const app = new Hono();
    const alike = { rules: [{ name: "alike", limit: 2, period: "1m" }] };
    app.use("/a/*", rateLimit({ policy: alike }));
    app.use("/b/*", rateLimit({ policy: alike }));
    app.all("*", (c) => c.text("ok"));
    const send = (route: string) => app.request(`https://api.test/${route}/x`, { headers: headers("alike") }, env);
    expect([(await send("a")).status, (await send("b")).status, (await send("a")).status]).toEqual([200, 200, 429]);
  });

  it("tells a shadow rule from an enforcing one of the same limits, and a global rule from a client rule of its name", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const app = new Hono();
      const rule = { name: "scoped-name", limit: 5, period: "1m" };
      app.use("/client/*", rateLimit({ policy: { rules: [rule] } }));
      app.use("/global/*", rateLimit({ policy: { rules: [{ ...rule, scope: "global" }] } }));
      app.use("/shadow/*", rateLimit({ policy: { rules: [{ ...rule, mode: "shadow" }] } }));
      app.all("*", (c) => c.text("ok"));
      const send = (route: string) => app.request(`https://api.test/${route}/x`, { headers: headers("scoped") }, env);
      expect([(await send("client")).status, (await send("global")).status, (await send("shadow")).status]).toEqual([200, 200, 500]);
    } finally {
      errors.mockRestore();
    }
  });

  it("refuses a prefix that could not name an object", () => {
    expect(() => rateLimit({ policy: limitOf(1), prefix: "a/b" })).toThrow(/rateLimit\(\) prefix: must be 1 to 64 letters/);
  });
});
