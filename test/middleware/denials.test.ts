import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { DenialCache } from "../../src/middleware/denials.ts";
import type { Decision, RuleVerdict } from "../../src/object/protocol.ts";
import { cacheableWaitMs } from "../../src/object-client/denial-wait.ts";
import { createApp } from "../../src/worker/app.ts";
import { meter, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const verdict: RuleVerdict = {
  name: "r",
  mode: "enforce",
  allowed: false,
  limit: 1,
  periodSeconds: 10,
  remaining: 0,
  resetSeconds: 10,
  retryAfterSeconds: 3,
  retryAfterMs: 2500,
};
const denial: Decision = { allowed: false, rules: [verdict] };

describe("DenialCache", () => {
  it("answers until the wait has passed, and not a millisecond after", () => {
    const cache = new DenialCache();
    cache.set("key:a", "r", denial, 1000, 2500);
    expect(cache.get("key:a", "r", 3499)).toBeDefined();
    expect(cache.get("key:a", "r", 3500)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("keeps at most its size in clients, dropping the least recently used", () => {
    const cache = new DenialCache(3);
    for (const client of ["a", "b", "c"]) cache.set(client, "r", denial, 0, 1000);
    cache.get("a", "r", 1);
    cache.set("d", "r", denial, 1, 1000);
    expect(cache.size).toBe(3);
    expect(cache.get("b", "r", 2)).toBeUndefined();
    expect(cache.get("a", "r", 2)).toBeDefined();
  });

  it("tells a client's rule sets apart", () => {
    const cache = new DenialCache();
    cache.set("key:a", "r", denial, 0, 1000);
    cache.set("key:a", "r\ns", denial, 0, 5000);
    expect(cache.get("key:a", "s", 1)).toBeUndefined();
    expect(cache.get("key:a", "r", 1000)).toBeUndefined();
    expect(cache.get("key:a", "r\ns", 1000)?.untilMs).toBe(5000);
    expect(cache.size).toBe(1);
  });

  it("remembers a bounded number of rule sets per client", () => {
    const cache = new DenialCache();
    for (let i = 0; i < 16; i++) cache.set("key:a", `r${i}`, denial, 0, 1000);
    cache.set("key:a", "r0", denial, 0, 2000);
    expect(cache.get("key:a", "r15", 1)).toBeDefined();
    cache.set("key:a", "r16", denial, 0, 1000);
    expect(cache.get("key:a", "r15", 1)).toBeUndefined();
    expect(cache.get("key:a", "r16", 1)).toBeDefined();
  });

  it("forgets one client's denials", () => {
    const cache = new DenialCache();
    cache.set("key:a", "r", denial, 0, 1000);
    cache.set("key:a", "s", denial, 0, 1000);
    cache.set("key:ab", "r", denial, 0, 1000);
    cache.forgetClient("key:a");
    expect(cache.get("key:a", "r", 1)).toBeUndefined();
    expect(cache.get("key:a", "s", 1)).toBeUndefined();
    expect(cache.get("key:ab", "r", 1)).toBeDefined();
  });

  it.each([
    ["the latest violated rule's exact wait", [verdict, { ...verdict, name: "s", retryAfterMs: 9000 }], 9000],
    ["nothing when a violated rule could not be decided", [verdict, { ...verdict, name: "s", degraded: true }], 0],
    ["nothing when waiting cannot help", [{ ...verdict, retryAfterMs: 0 }], 0],
    ["only enforcing rules", [verdict, { ...verdict, name: "s", mode: "shadow" as const, retryAfterMs: 60_000 }], 2500],
  ])("caches a denial for %s", (_, rules, expected) => {
    expect(cacheableWaitMs({ allowed: false, rules })).toBe(expected);
  });
});

describe("repeated denials through the Worker", () => {
  it("are answered without the object until the retry time, then the object admits again", async () => {
    const clock = new ManualClock();
    const app = createApp({ clock });
    const headers = { "x-api-key": "flooding-client" };
    await useClockFor(headers, clock);
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "tiny", limit: 1, period: "10s" }] }) };
    const send = () => app.request("https://limiter.test/", { headers }, bindings);

    expect((await send()).status).toBe(200);
    expect((await send()).status).toBe(429);
    const checksBefore = meter.decisions;
    clock.advanceMs(4_000);
    const statuses = [];
    for (let i = 0; i < 50; i++) statuses.push((await send()).status);
    expect(statuses.every((status) => status === 429)).toBe(true);
    expect(meter.decisions).toBe(checksBefore);

    const fromCache = await send();
    expect(fromCache.headers.get("Retry-After")).toBe("6");
    expect(fromCache.headers.get("Content-Type")).toBe("application/problem+json");
    expect(await fromCache.json()).toMatchObject({ "violated-policies": ["tiny"] });

    clock.advanceMs(5_999);
    expect((await send()).status).toBe(429);
    clock.advanceMs(1);
    expect((await send()).status).toBe(200);
    expect(meter.decisions).toBe(checksBefore + 1);
  });

  it("render the headers anew exactly when their whole seconds change", async () => {
    const clock = new ManualClock();
    const app = createApp({ clock });
    const headers = { "x-api-key": "boundary-client" };
    await useClockFor(headers, clock);
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "tiny", limit: 1, period: "10s" }] }) };
    const send = async () => {
      const response = await app.request("https://limiter.test/", { headers }, bindings);
      return `${response.status} Retry-After ${response.headers.get("Retry-After")} ${response.headers.get("RateLimit")}`;
    };

    expect(await send()).toMatch(/^200/);
    clock.advanceMs(7_500); // the object denies: 2.5 s until the token is back
    const seen = [await send()];
    for (const stepMs of [499, 1, 499, 1, 999, 1, 499, 1]) {
      clock.advanceMs(stepMs);
      seen.push(await send());
    }
    expect(seen).toEqual([
      '429 Retry-After 3 "tiny";r=0;t=3', // +0 ms
      '429 Retry-After 3 "tiny";r=0;t=3', // +499: 2.501 s left
      '429 Retry-After 2 "tiny";r=0;t=3', // +500: 2 s left
      '429 Retry-After 2 "tiny";r=0;t=3', // +999
      '429 Retry-After 2 "tiny";r=0;t=2', // +1000: a whole second since the object's answer
      '429 Retry-After 1 "tiny";r=0;t=2', // +1999: 0.501 s left
      '429 Retry-After 1 "tiny";r=0;t=1', // +2000
      '429 Retry-After 1 "tiny";r=0;t=1', // +2499: the last millisecond of the denial
      '200 Retry-After null "tiny";r=0;t=10', // +2500: the object admits again
    ]);
  });

  it("logs a flood of repeated denials as one line per second with its count", async () => {
    const clock = new ManualClock();
    const app = createApp({ clock });
    const headers = { "x-api-key": "logged-flood" };
    await useClockFor(headers, clock);
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "tiny", limit: 1, period: "10s" }] }) };
    await app.request("https://limiter.test/", { headers }, bindings);
    await app.request("https://limiter.test/", { headers }, bindings);
    const lines: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    for (let i = 0; i < 30; i++) await app.request("https://limiter.test/", { headers }, bindings);
    clock.advanceMs(1000);
    await app.request("https://limiter.test/", { headers }, bindings);
    spy.mockRestore();
    const logged = lines.map((line) => JSON.parse(line) as { cached?: boolean; repeats?: number });
    expect(logged).toHaveLength(3);
    expect(logged.every((entry) => entry.cached)).toBe(true);
    expect(logged[1]?.repeats).toBe(29);
  });
});
