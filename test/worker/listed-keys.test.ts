import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { createApp } from "../../src/worker/app.ts";
import type { BlockedKey, HoldingKey } from "../../src/worker/listed-keys.ts";
import { useClock, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const TOKEN = "blocks-admin-token-8c1f5e2a7d9b3046";
const POLICY = {
  dimensions: { org: { from: "header", name: "x-org" } },
  rules: [
    { name: "boxed", limit: 2, period: "1h", block: { seconds: [600] } },
    { name: "org-boxed", key: "org", limit: 3, period: "1h", block: { seconds: [900] } },
  ],
};
const bindings = { ...env, ADMIN_TOKEN: TOKEN, RATE_LIMIT_POLICY: JSON.stringify(POLICY) };
const auth = { Authorization: `Bearer ${TOKEN}` };

/** The id of an org's object, as the admin API names it. */
async function orgObjectId(org: string): Promise<string> {
  return `org:${(await UNKEYED_HASHER.clientId(org)).slice("key:".length)}`;
}

describe("the admin API's list of blocked keys", () => {
  const clock = new ManualClock();
  const app = createApp({ clock });
  const admin = (path: string, init: RequestInit = {}, env: object = bindings) =>
    app.request(`https://limiter.test/_ratelimit${path}`, init, env);
  const send = (key: string, org: string) =>
    app.request("https://limiter.test/api", { headers: { "x-api-key": key, "x-org": org } }, bindings);
  const listed = async () => {
    const response = await admin("/blocks", { headers: auth });
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    return ((await response.json()) as { blocks: BlockedKey[] }).blocks;
  };

  it("lists the keys blocked now, by penalty box or by hand, a client's or an org's, until they are lifted or end", async () => {
    const [boxed, byHand, lifted] = await Promise.all(
      ["boxed-user", "blocked-by-hand", "lifted-by-hand"].map((key) => useClockFor({ "x-api-key": key }, clock)),
    );
    const org = await orgObjectId("boxed-org");
    await useClock(env.RATE_LIMITER.getByName(org), clock);
    await useClock(env.RATE_LIMITER.getByName(await orgObjectId("quiet-org")), clock);

    // A user exhausts its rule, and is boxed for 600 s; its org is not.
    expect(
      [await send("boxed-user", "quiet-org"), await send("boxed-user", "quiet-org"), await send("boxed-user", "quiet-org")].map(
        (r) => r.status,
      ),
    ).toEqual([200, 200, 429]);
    // An org's users (a fresh key each) exhaust the org's rule: the org is boxed for 900 s.
    const members = [];
    for (let i = 0; i < 4; i++) {
      const key = `boxed-org-member-${i}`;
      await useClockFor({ "x-api-key": key }, clock);
      members.push((await send(key, "boxed-org")).status);
    }
    expect(members).toEqual([200, 200, 200, 429]);
    // By hand: one for 300 s, one blocked and lifted.
    for (const [id, seconds] of [
      [byHand, 300],
      [lifted, 60],
    ] as const) {
      const response = await admin(`/clients/id:${id}/block`, { method: "PUT", headers: auth, body: JSON.stringify({ seconds }) });
      expect(response.status).toBe(200);
    }
    expect((await admin(`/clients/id:${lifted}/block`, { method: "DELETE", headers: auth })).status).toBe(200);

    const nowMs = clock.nowMs();
    expect(await listed()).toEqual([
      {
        client: org,
        path: `/_ratelimit/clients/${encodeURIComponent(`id:${org}`)}`,
        dimension: "org",
        untilMs: nowMs + 900_000,
        blockedUntilMs: null,
        blockedRules: { "org-boxed": nowMs + 900_000 },
      },
      {
        client: boxed,
        path: `/_ratelimit/clients/${encodeURIComponent(`id:${boxed}`)}`,
        untilMs: nowMs + 600_000,
        blockedUntilMs: null,
        blockedRules: { boxed: nowMs + 600_000 },
      },
      {
        client: byHand,
        path: `/_ratelimit/clients/${encodeURIComponent(`id:${byHand}`)}`,
        untilMs: nowMs + 300_000,
        blockedUntilMs: nowMs + 300_000,
        blockedRules: {},
      },
    ]);

    // The blocks by hand and the user's end; the org's is lifted through the path the list gives.
    clock.advanceSeconds(600);
    expect((await listed()).map(({ client }) => client)).toEqual([org]);
    const [orgBlock] = await listed();
    expect(
      (await admin(`${(orgBlock as BlockedKey).path.slice("/_ratelimit".length)}/block`, { method: "DELETE", headers: auth })).status,
    ).toBe(200);
    expect(await listed()).toEqual([]);
  });

  it("asks for the admin token, and names RATE_LIMIT_METRICS when it is not bound", async () => {
    expect((await admin("/blocks")).status).toBe(401);
    const { RATE_LIMIT_METRICS: _, ...unbound } = bindings;
    const response = await admin("/blocks", { headers: auth }, unbound);
    expect(response.status).toBe(500);
    expect(((await response.json()) as { detail: string }).detail).toMatch(/^RATE_LIMIT_METRICS: not bound/);
  });
});

describe("the admin API's list of leases and holds", () => {
  const clock = new ManualClock();
  const app = createApp({ clock });
  const policy = {
    rules: [
      { name: "fast", limit: 5, period: "1s", match: { path: "/fast" } },
      { name: "failed-logins", limit: 5, period: "1h", count: "failed", match: { path: "/status/*" } },
    ],
  };
  const bindings = { ...env, ADMIN_TOKEN: TOKEN, RATE_LIMIT_POLICY: JSON.stringify(policy) };
  const holdings = async () => {
    const response = await app.request("https://limiter.test/_ratelimit/holdings", { headers: auth }, bindings);
    expect(response.status).toBe(200);
    return (await response.json()) as { leases: HoldingKey[]; holds: HoldingKey[] };
  };

  it("lists the keys whose objects lease units to isolates or hold charges awaiting settlement, until they end", async () => {
    const leasing = await useClockFor({ "x-api-key": "leasing-client" }, clock);
    const holding = await useClockFor({ "x-api-key": "holding-client" }, clock);
    const send = (key: string, path: string) => app.request(`https://limiter.test${path}`, { headers: { "x-api-key": key } }, bindings);
    // The second request of a fast rule brings a lease of half what is left: 2 of 4.
    for (let i = 0; i < 2; i++) expect((await send("leasing-client", "/fast")).status).toBe(200);
    // A login whose response is not read yet: its charge is held until the body ends.
    const pending = await send("holding-client", "/status/200");
    expect(pending.status).toBe(200);

    const listed = await holdings();
    expect(listed.leases).toEqual([
      {
        client: leasing,
        path: `/_ratelimit/clients/${encodeURIComponent(`id:${leasing}`)}`,
        untilMs: expect.any(Number),
        rules: { fast: 2 },
      },
    ]);
    expect(listed.holds).toEqual([
      {
        client: holding,
        path: `/_ratelimit/clients/${encodeURIComponent(`id:${holding}`)}`,
        untilMs: clock.nowMs() + 600_000,
        rules: { "failed-logins": 1 },
      },
    ]);
    // The response read to its end settles the hold (a success, refunded); the lease's end passes.
    await pending.text();
    await vi.waitFor(async () => expect((await holdings()).holds).toEqual([]));
    clock.advanceSeconds(60);
    expect((await holdings()).leases).toEqual([]);
  });
});
