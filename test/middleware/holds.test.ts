import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { stream } from "hono/streaming";
import { describe, expect, it } from "vitest";
import { type PolicyInput, rateLimit } from "../../src/library.ts";
import { createApp } from "../../src/worker/app.ts";
import { ManualClock } from "../manual-clock.ts";

interface Requestable {
  request(input: string, init: RequestInit, env: object, ctx: ExecutionContext): Response | Promise<Response>;
}

/** Sends a request to `app` and waits for what its response left to do (the settlement, in `waitUntil`). */
async function send(app: Requestable, path: string, init: RequestInit = {}, bindings: object = env) {
  const ctx = createExecutionContext();
  const response = await app.request(path, init, bindings, ctx);
  const body = await response.text();
  await waitOnExecutionContext(ctx);
  return { status: response.status, body, headers: response.headers };
}

describe("holds through the middleware", () => {
  it("counts only failed logins: a success refunds its attempt once the response is known", async () => {
    const policy = {
      rules: [{ name: "mw-failed-logins", limit: 2, period: "15m", algorithm: "fixed-window", count: "failed" }],
    } satisfies PolicyInput;
    const app = new Hono();
    app.use("*", rateLimit({ policy, prefix: "mw-holds-login", clock: new ManualClock() }));
    app.post("/login", async (c) => ((await c.req.text()) === "right" ? c.text("welcome") : c.text("wrong password", 401)));
    const login = (password: string) => send(app, "/login", { method: "POST", body: password, headers: { "x-api-key": "mw-holder" } });
    for (let i = 0; i < 5; i++) expect((await login("right")).status).toBe(200);
    expect((await login("wrong")).status).toBe(401);
    expect((await login("wrong")).status).toBe(401);
    expect((await login("right")).status).toBe(429);
  });

  it("counts what requestWasSuccessful says, not the status", async () => {
    const policy = { rules: [{ name: "mw-successes", limit: 1, period: "1h", count: "successful" }] } satisfies PolicyInput;
    const app = new Hono();
    app.use(
      "*",
      rateLimit({
        policy,
        prefix: "mw-holds-success",
        clock: new ManualClock(),
        requestWasSuccessful: (c) => c.res.headers.get("x-created") === "yes",
      }),
    );
    app.get("/", (c) => c.text("ok", 200, { "x-created": c.req.query("created") ?? "no" }));
    const headers = { "x-api-key": "mw-success" };
    expect((await send(app, "/?created=no", { headers })).status).toBe(200);
    expect((await send(app, "/?created=no", { headers })).status).toBe(200);
    expect((await send(app, "/?created=yes", { headers })).status).toBe(200);
    expect((await send(app, "/?created=no", { headers })).status).toBe(429);
  });

  it("settles at the streamed body's end, at the cost the app gives once it is known", async () => {
    const policy = { rules: [{ name: "mw-tokens", limit: 100, period: "1h", cost: 30 }] } satisfies PolicyInput;
    const app = new Hono<{ Variables: { tokens: number } }>();
    app.use("*", rateLimit({ policy, prefix: "mw-holds-stream", clock: new ManualClock(), settle: (c) => c.get("tokens") }));
    app.get("/complete", (c) =>
      stream(c, async (body) => {
        let tokens = 0;
        for (const word of ["the ", "cost ", "is ", "known ", "at ", "the ", "end"]) {
          await body.write(word);
          tokens += 2;
        }
        c.set("tokens", tokens);
      }),
    );
    const headers = { "x-api-key": "mw-streamer" };
    const first = await send(app, "/complete", { headers });
    expect(first.body).toBe("the cost is known at the end");
    // Charged 30 at admission, each settled at 14: after five, 100 - 5 × 14 leaves 30, enough for one more of 30.
    for (let i = 0; i < 3; i++) expect((await send(app, "/complete", { headers })).status).toBe(200);
    const fifth = await send(app, "/complete", { headers });
    expect(fifth.headers.get("RateLimit")).toBe('"mw-tokens";r=14;t=3096');
    expect((await send(app, "/complete", { headers })).status).toBe(200);
    // 16 left, fewer than the 30 each request is charged at admission.
    expect((await send(app, "/complete", { headers })).status).toBe(429);
  });

  it("refunds what settle calls a refund, and keeps the charge when settle gives nothing usable", async () => {
    const policy = { rules: [{ name: "mw-refunds", limit: 2, period: "1h" }] } satisfies PolicyInput;
    const app = new Hono();
    app.use(
      "*",
      rateLimit({
        policy,
        prefix: "mw-holds-refund",
        clock: new ManualClock(),
        settle: (c) => (c.req.query("cached") === "yes" ? "refund" : (Number(c.req.query("cost")) as number)),
      }),
    );
    app.get("/", (c) => c.text("ok"));
    const headers = { "x-api-key": "mw-refunder" };
    for (let i = 0; i < 4; i++) expect((await send(app, "/?cached=yes", { headers })).status).toBe(200);
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    try {
      expect((await send(app, "/?cost=-1", { headers })).status).toBe(200);
    } finally {
      console.error = original;
    }
    expect(errors.map((line) => JSON.parse(line).event)).toEqual(["settle-invalid"]);
    expect((await send(app, "/?cost=1", { headers })).status).toBe(200);
    expect((await send(app, "/?cost=1", { headers })).status).toBe(429);
  });

  it("holds the failed attempts per email of the shipped Worker's login, read from the body, with no code", async () => {
    const policy = {
      dimensions: { email: { from: "body", field: "email", lowercase: true } },
      rules: [{ name: "w-failed-per-email", key: "email", limit: 2, period: "15m", count: "failed", match: { path: "/status/*" } }],
    };
    const worker = createApp({ clock: new ManualClock() });
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const login = (status: number, email = "hal@example.com") =>
      send(
        worker,
        `https://limiter.test/status/${status}`,
        {
          method: "POST",
          body: JSON.stringify({ email }),
          headers: { "content-type": "application/json", "CF-Connecting-IP": "192.0.2.44" },
        },
        bindings,
      );
    // The demo origin answers /status/401 with a 401: failures, kept; its 200s are successes, each refunded.
    for (let i = 0; i < 4; i++) expect((await login(200)).status).toBe(200);
    expect((await login(401)).status).toBe(401);
    expect((await login(401, "HAL@example.com")).status).toBe(401);
    expect((await login(200)).status).toBe(429);
    expect((await login(200, "ida@example.com")).status).toBe(200);
  });
});
