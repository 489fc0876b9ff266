import { env, exports } from "cloudflare:workers";
import { Hono } from "hono";
import { rateLimiter } from "hono-rate-limiter";
import { describe, expect, it } from "vitest";
import type { RateLimitService, RateLimitServiceProps } from "../../src/core/rate-limit-service.ts";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { useClock } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

/** The shipped Worker's RateLimitService, as a service binding reaches it: as it is, or with a caller's props. */
const service = (
  exports as unknown as {
    RateLimitService: Service<RateLimitService> & ((options: { props: RateLimitServiceProps }) => Service<RateLimitService>);
  }
).RateLimitService;

// A caller's binding as workers-types knows Cloudflare's own: RateLimitService must be one, unchanged.
const asBinding: RateLimit = service;

/** What a caller written for `[[ratelimits]]` does, word for word. */
async function checkout(limiter: RateLimit, userId: string): Promise<boolean> {
  const { success } = await limiter.limit({ key: userId });
  return success;
}

/**
 * An RPC call's result as a plain promise: vitest inspecting the call's own promise reads properties of it, and each
 * read is a pipelined call of its own that rejects unhandled when the call does.
 */
function settled<T>(call: Promise<T>): Promise<T> {
  return call.then((value) => value);
}

/** Puts the object of `key` under `prefix` on a fresh manual clock, so the shipped 5 per 10 s does not refill meanwhile. */
async function onClock(key: string, prefix?: string): Promise<ManualClock> {
  const clock = new ManualClock();
  await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, await UNKEYED_HASHER.clientId(key))), clock);
  return clock;
}

describe("RateLimitService, the rate-limit binding's drop-in", () => {
  it("decides a caller's unchanged env.X.limit({ key }) exactly, under the policy of the Worker that exports it", async () => {
    await onClock("svc-user-1");
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await checkout(asBinding, "svc-user-1"));
    expect(results).toEqual([true, true, true, true, true, false]);
    expect(await checkout(asBinding, "svc-user-2")).toBe(true);
  });

  it("answers the flat summary beside success, and takes the binding's delta as the cost", async () => {
    await onClock("svc-user-3");
    expect(await service.limit({ key: "svc-user-3", delta: 3 })).toMatchObject({
      success: true,
      limit: 5,
      remaining: 2,
      headers: { "RateLimit-Policy": '"default";q=5;w=10' },
    });
    expect(await service.limit({ key: "svc-user-3", delta: 3 })).toMatchObject({ success: false, remaining: 2, retryAfterMs: 2000 });
    await expect(settled(service.limit({ key: "svc-user-3", delta: 1, cost: 1 }))).rejects.toThrow("give cost or delta, not both");
  });

  it("keeps callers with different prefixes apart: one exhausting its budget leaves the other's whole", async () => {
    const checkoutBinding = service({ props: { prefix: "checkout" } });
    const searchBinding = service({ props: { prefix: "search" } });
    await onClock("svc-shared", "checkout");
    await onClock("svc-shared", "search");
    for (let i = 0; i < 5; i++) await checkoutBinding.limit({ key: "svc-shared" });
    expect((await checkoutBinding.limit({ key: "svc-shared" })).success).toBe(false);
    expect(await searchBinding.limit({ key: "svc-shared" })).toMatchObject({ success: true, remaining: 4 });
  });

  it("lets a caller use only the rules its props name", async () => {
    const narrowed = service({ props: { prefix: "narrowed", rules: ["default"] } });
    await onClock("svc-narrow", "narrowed");
    expect((await narrowed.limit({ key: "svc-narrow" })).rules.map((rule) => rule.name)).toEqual(["default"]);
    await expect(settled(narrowed.limit({ key: "svc-narrow", rules: ["other"] }))).rejects.toThrow(
      "limit(): rules: this binding may use only default (not other)",
    );
  });

  it("lets a caller name only the tiers its props list", async () => {
    await expect(settled(service.limit({ key: "svc-tier", tier: "pro" }))).rejects.toThrow(
      "limit(): tier: this binding may name no tier (props.tiers)",
    );
    // A dimension's tier too: otherwise a caller could name any tier for its org.
    await expect(settled(service.limit({ key: "svc-tier", keys: { org: { key: "o", tier: "pro" } } }))).rejects.toThrow(
      "limit(): keys.org.tier: this binding may name no tier (props.tiers)",
    );
  });

  it("rejects a bad key with an error naming it, across the binding", async () => {
    await expect(settled(service.limit({ key: "" }))).rejects.toThrow("limit(): key is empty");
  });

  it("inspects and resets a key", async () => {
    const binding = service({ props: { prefix: "svc-admin" } });
    await onClock("svc-reset", "svc-admin");
    await binding.limit({ key: "svc-reset" });
    await binding.limit({ key: "svc-reset" });
    expect((await binding.inspect("svc-reset")).rules[0]).toMatchObject({ name: "default", remaining: 3 });
    await binding.reset("svc-reset");
    expect((await binding.inspect("svc-reset")).rules[0]).toMatchObject({ name: "default", remaining: 5 });
  });

  it("holds a call until the caller settles it, and blocks and lifts a key, across the binding", async () => {
    const binding = service({ props: { prefix: "svc-holds" } });
    await onClock("svc-held", "svc-holds");
    const held = await binding.limit({ key: "svc-held", hold: true, cost: 4 });
    expect((await binding.inspect("svc-held")).rules[0]).toMatchObject({ remaining: 1, held: 4 });
    expect(await binding.settle(held.hold, { cost: "refund" })).toBe(true);
    expect((await binding.inspect("svc-held")).rules[0]).toMatchObject({ remaining: 5, held: 0 });
    await binding.block("svc-held", { seconds: 60 });
    const blocked = await binding.limit({ key: "svc-held" });
    expect([blocked.success, blocked.retryAfterMs]).toEqual([false, 60_000]);
    await binding.unblock("svc-held");
    expect((await binding.limit({ key: "svc-held" })).success).toBe(true);
    const narrowed = service({ props: { prefix: "svc-holds", rules: ["default"] } });
    await expect(settled(narrowed.unblock("svc-held"))).rejects.toThrow("unblock(): this binding may use only default (props.rules)");
  });

  it("is what hono-rate-limiter's binding option takes: its app limits exactly through it", async () => {
    await onClock("svc-hono-client", "hono-rate-limiter");
    const app = new Hono();
    app.use(
      rateLimiter({ binding: service({ props: { prefix: "hono-rate-limiter" } }), keyGenerator: (c) => c.req.header("x-user") ?? "" }),
    );
    app.get("/", (c) => c.text("ok"));
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await app.request("/", { headers: { "x-user": "svc-hono-client" } })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });
});
