import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashSecret } from "../../src/identity/secret.ts";
import type { RateLimiter } from "../../src/object/rate-limiter.ts";
import { GLOBAL_OBJECT } from "../../src/object-client/decide-request.ts";
import { createApp } from "../../src/worker/app.ts";
import { meter, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

/** Sends `count` requests at once and returns their statuses. */
async function concurrently(count: number, send: () => Response | Promise<Response>): Promise<number[]> {
  const responses = await Promise.all(Array.from({ length: count }, send));
  return responses.map((response) => response.status);
}

describe("concurrent requests of one client", () => {
  it("reach its object in a few calls instead of one each, and exactly its burst is admitted", async () => {
    const clock = new ManualClock();
    const headers = { "x-api-key": "batched-client" };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "burst-25", limit: 25, period: "1h" }] }) };
    const callsBefore = meter.calls;

    const statuses = await concurrently(40, () => app.request("https://limiter.test/", { headers }, bindings));

    expect(statuses.filter((status) => status === 200)).toHaveLength(25);
    expect(statuses.filter((status) => status === 429)).toHaveLength(15);
    // One call goes at once; the requests that arrive while it is in flight go together in the next.
    expect(meter.calls - callsBefore).toBeLessThanOrEqual(3);
  });
});

describe("concurrent requests of many clients under a global rule", () => {
  it("admit exactly the global budget and refund exactly the clients it denied", async () => {
    const clock = new ManualClock();
    await runInDurableObject(env.RATE_LIMITER.getByName(GLOBAL_OBJECT), (limiter: RateLimiter) => {
      limiter.clock = clock;
    });
    const policy = {
      rules: [
        { name: "per-client-5", limit: 5, period: "1h" },
        { name: "batched-global-cap", limit: 10, period: "1h", scope: "global" },
      ],
    };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const clients = await Promise.all(
      Array.from({ length: 8 }, async (_, index) => {
        const headers = { "x-api-key": `batched-global-client-${index}` };
        await useClockFor(headers, clock);
        return headers;
      }),
    );
    const app = createApp({ clock });

    const perClient = await Promise.all(
      clients.map((headers) => concurrently(3, () => app.request("https://limiter.test/", { headers }, bindings))),
    );

    const admitted = perClient.map((statuses) => statuses.filter((status) => status === 200).length);
    expect(admitted.reduce((sum, count) => sum + count, 0)).toBe(10);
    // Each client was charged for its admitted requests only: its denied ones were refunded.
    const ownOnly = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [policy.rules[0]] }) };
    for (const [index, headers] of clients.entries()) {
      const peek = await app.request("https://limiter.test/", { headers }, ownOnly);
      expect(peek.headers.get("RateLimit")).toContain(`"per-client-5";r=${5 - (admitted[index] ?? 0) - 1};`);
    }
  });
});

describe("clients with and without a tier on the same rules", () => {
  it("each get their own limit, whichever asked first", async () => {
    const clock = new ManualClock();
    const keys = ["untiered-first", "tiered-pro", "untiered-after"];
    for (const key of keys) await useClockFor({ "x-api-key": key }, clock);
    const policy = {
      rules: [{ name: "tiered-rule", limit: 2, period: "1h" }],
      tiers: { pro: { "tiered-rule": { limit: 5 } } },
      clients: { [`key:${await hashSecret("tiered-pro")}`]: "pro" },
    };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const app = createApp({ clock });
    const admitted = new Map(keys.map((key) => [key, 0]));
    for (let round = 0; round < 6; round++) {
      for (const key of keys) {
        const response = await app.request("https://limiter.test/", { headers: { "x-api-key": key } }, bindings);
        if (response.status === 200) admitted.set(key, (admitted.get(key) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(admitted)).toEqual({ "untiered-first": 2, "tiered-pro": 5, "untiered-after": 2 });
  });
});

describe("the policy's reservations switch", () => {
  it.each([
    [true, 1],
    [false, 3],
  ])("with reservations: %s, three admissions of a roomy rule cost %i row writes", async (reservations, rows) => {
    const clock = new ManualClock();
    const headers = { "x-api-key": `reservations-${reservations}` };
    await useClockFor(headers, clock);
    const app = createApp({ clock });
    const policy = { rules: [{ name: "roomy", limit: 1600, period: "10s" }], reservations };
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify(policy) };
    const before = meter.rowsWritten;
    for (let i = 0; i < 3; i++) expect((await app.request("https://limiter.test/", { headers }, bindings)).status).toBe(200);
    expect(meter.rowsWritten - before).toBe(rows);
  });
});
