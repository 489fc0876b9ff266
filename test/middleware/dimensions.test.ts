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
