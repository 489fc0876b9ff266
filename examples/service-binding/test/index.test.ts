import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

/** A unique user per test: the limiter Worker's objects outlive a test. */
const userOf = (name: string) => `${name}-${crypto.randomUUID()}`;

function checkout(userId: string) {
  return exports.default.fetch(`https://shop.example/?user=${encodeURIComponent(userId)}`);
}

describe("a Worker written for Cloudflare's rate-limit binding, bound to RateLimitService in the limiter Worker", () => {
  it("checks a user out 5 times in 10 s, then answers 429, as the limiter Worker's checkout rule says", async () => {
    const alice = userOf("alice");
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await checkout(alice)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(await (await checkout(alice)).text()).toBe(`Too many checkouts for ${alice}: try again shortly.\n`);
  });

  it("counts every user on their own", async () => {
    const bob = userOf("bob");
    const carol = userOf("carol");
    for (let i = 0; i < 5; i++) await checkout(bob);
    expect((await checkout(bob)).status).toBe(429);
    const response = await checkout(carol);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(`Checked out for ${carol}.\n`);
  });

  it("answers the binding's success with the flat summary beside it, and counts a call's delta", async () => {
    const dave = userOf("dave");
    expect(await env.MY_RATE_LIMITER.limit({ key: dave })).toMatchObject({ success: true, limit: 5, remaining: 4 });
    expect(await env.MY_RATE_LIMITER.limit({ key: dave, delta: 4 })).toMatchObject({ success: true, remaining: 0 });
    const denied = await env.MY_RATE_LIMITER.limit({ key: dave });
    expect(denied).toMatchObject({ success: false, remaining: 0 });
    expect(denied.retryAfterMs).toBeGreaterThan(0);
  });

  it("keeps this caller to the rules its binding's props name", async () => {
    // The limiter's policy also has a "signup" rule; this caller's props allow only "checkout".
    const call = env.MY_RATE_LIMITER.limit({ key: userOf("eve"), rules: ["signup"] });
    await expect(call.then((result) => result)).rejects.toThrow("rules: this binding may use only checkout (not signup)");
  });
});
