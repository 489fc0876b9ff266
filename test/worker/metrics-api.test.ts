import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isolateCounters } from "../../src/metrics/decision-counters.ts";
import type { Stats } from "../../src/metrics/metrics-report.ts";
import { emptyTally } from "../../src/metrics/tally.ts";
import { createApp } from "../../src/worker/app.ts";
import { useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const TOKEN = "metrics-admin-token-5d2b8f1a9e3c7046";
const POLICY = {
  rules: [
    { name: "metered", limit: 3, period: "1h" },
    { name: "metered-hourly", algorithm: "fixed-window", limit: 100, period: "1h" },
  ],
};
const bindings = { ...env, ADMIN_TOKEN: TOKEN, RATE_LIMIT_POLICY: JSON.stringify(POLICY) };
const auth = { Authorization: `Bearer ${TOKEN}` };

/** The samples of a Prometheus text exposition, by series (name and labels as written). */
function samplesOf(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

function decisionsOf(samples: Map<string, number>, rule: string, outcome: string): number {
  let total = 0;
  for (const answeredBy of ["object", "lease", "cached_denial"]) {
    total += samples.get(`ratelimit_decisions_total{rule="${rule}",outcome="${outcome}",answered_by="${answeredBy}"}`) ?? 0;
  }
  return total;
}

describe("the admin API's metrics", () => {
  const app = createApp({ clock: new ManualClock() });
  const admin = (path: string, init: RequestInit = {}, env: object = bindings) =>
    app.request(`https://limiter.test/_ratelimit${path}`, init, env);

  it("asks for the admin token for /metrics, /stats and any admin path but /health and /dashboard", async () => {
    for (const path of ["/metrics", "/stats", "/a-route-added-later"]) {
      const response = await admin(path);
      expect(response.status).toBe(401);
      expect(response.headers.get("Cache-Control")).toBe("no-store");
    }
  });

  it("count in /metrics and /stats exactly the traffic sent, by rule and outcome, with the most denied client", async () => {
    const headers = { "x-api-key": "metered-client" };
    const clientId = await useClockFor(headers, new ManualClock());
    const before = samplesOf(await (await admin("/metrics", { headers: auth })).text());
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await app.request("https://limiter.test/api", { headers }, bindings)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);

    const response = await admin("/metrics", { headers: auth });
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const after = samplesOf(await response.text());
    const sent = (rule: string, outcome: string) => decisionsOf(after, rule, outcome) - decisionsOf(before, rule, outcome);
    expect([sent("metered", "allowed"), sent("metered", "denied")]).toEqual([3, 3]);
    // A denied request counts only under the rule that denied it: the hourly rule was charged the three admitted.
    expect([sent("metered-hourly", "allowed"), sent("metered-hourly", "denied")]).toEqual([3, 0]);
    const requests = (outcome: string) =>
      ["object", "lease", "cached_denial"].reduce((total, answeredBy) => {
        const series = `ratelimit_requests_total{outcome="${outcome}",answered_by="${answeredBy}"}`;
        return total + (after.get(series) ?? 0) - (before.get(series) ?? 0);
      }, 0);
    expect([requests("allowed"), requests("denied")]).toEqual([3, 3]);
    // The third admission left 0 of 3: under a fifth of the limit.
    expect(after.get('ratelimit_near_limit_total{rule="metered"}')).toBe(
      (before.get('ratelimit_near_limit_total{rule="metered"}') ?? 0) + 1,
    );
    expect(after.get('ratelimit_object_call_seconds_bucket{le="+Inf"}')).toBe(after.get("ratelimit_object_call_seconds_count"));

    const stats = (await (await admin("/stats", { headers: auth })).json()) as Stats;
    expect(stats.lastHour.rules.metered?.outcomes).toMatchObject({ allowed: 3, denied: 3 });
    expect(stats.topDenied.metered?.[0]).toEqual({ client: clientId, count: 3 });
    expect(stats.minutes.at(-1)?.rules.metered?.outcomes.denied).toBe(3);
    expect(stats.range).toMatchObject({ name: "1h", stepMs: 60_000 });
    expect(stats.range.endMs - stats.range.startMs).toBe(3_600_000);

    // The same counts in every range: by the minute for 15 minutes, by 5-minute spans for a day.
    for (const [range, stepMs] of [
      ["15m", 60_000],
      ["24h", 300_000],
    ] as const) {
      const ranged = (await (await admin(`/stats?range=${range}`, { headers: auth })).json()) as Stats;
      expect(ranged.range).toMatchObject({ name: range, stepMs });
      expect(ranged.inRange.rules.metered?.outcomes).toMatchObject({ allowed: 3, denied: 3 });
      const last = ranged.series.at(-1);
      expect(last?.rules.metered?.outcomes.denied).toBe(3);
      expect((last?.startMs ?? 0) % stepMs).toBe(0);
      expect(ranged.series.every(({ startMs }) => startMs >= ranged.range.startMs && startMs < ranged.range.endMs)).toBe(true);
    }
    const refused = await admin("/stats?range=2d", { headers: auth });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { detail: string }).detail).toBe("range: must be one of 15m, 1h, 24h");
  });

  it("answers 503 naming the metrics objects that did not answer, rather than totals without them", async () => {
    const broken = {
      getByName: (name: string) =>
        name === "metrics:3" ? { read: () => Promise.reject(new Error("gone")) } : env.RATE_LIMIT_METRICS.getByName(name),
    };
    const response = await admin("/stats", { headers: auth }, { ...bindings, RATE_LIMIT_METRICS: broken });
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("5");
    expect(((await response.json()) as { detail: string }).detail).toBe("The metrics objects metrics:3 did not answer; try again.");
  });

  it("never let metrics that fail change a decision", async () => {
    const clock = new ManualClock(Date.UTC(2032, 0, 1));
    const failing = createApp({ clock });
    const headers = { "x-api-key": "metrics-failing-client" };
    await useClockFor(headers, new ManualClock());
    const broken = {
      ...bindings,
      RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "still-limited", limit: 2, period: "1h" }] }),
      RATE_LIMIT_METRICS: { getByName: () => ({ add: () => Promise.reject(new Error("metrics object gone")) }) },
      RATE_LIMIT_ANALYTICS: {
        writeDataPoint() {
          throw new Error("too many data points");
        },
      },
    };
    const started: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => started.push(promise), passThroughOnException() {}, props: {} };
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      // 11 s apart: every request finds a flush due.
      clock.advanceMs(11_000);
      statuses.push((await failing.request("https://limiter.test/api", { headers }, broken, ctx as unknown as ExecutionContext)).status);
    }
    await Promise.all(started);
    expect(started.length).toBeGreaterThanOrEqual(3);
    expect(statuses).toEqual([200, 200, 429, 429]);
  });

  it("flush during a flood of cached denials answered before the app routes them", async () => {
    // Later than any other test's clock: the isolate has one flusher, whose next flush those set.
    const clock = new ManualClock(Date.UTC(2040, 0, 1));
    const flooded = createApp({ clock });
    const headers = { "x-api-key": "flooding-client" };
    await useClockFor(headers, new ManualClock());
    const policy = { ...bindings, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "flooded", limit: 1, period: "1h" }] }) };
    const started: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => started.push(promise), passThroughOnException() {}, props: {} };
    const send = () => flooded.request("https://limiter.test/api", { headers }, policy, ctx as unknown as ExecutionContext);
    expect([(await send()).status, (await send()).status]).toEqual([200, 429]);
    const flushesBefore = started.length;
    for (let i = 0; i < 3; i++) {
      clock.advanceMs(11_000);
      expect((await send()).status).toBe(429);
    }
    expect(started.length - flushesBefore).toBe(3);
    await Promise.all(started);
    const stats = (await (await admin("/stats", { headers: auth })).json()) as Stats;
    expect(stats.lastHour.rules.flooded?.answeredBy).toEqual({ object: 2, lease: 0, cached_denial: 3 });
  });

  it("count the origin's answers by class, the proxy's own 502 and 504 apart, and the origin's latency", async () => {
    const scrape = async () => samplesOf(await (await admin("/metrics", { headers: auth })).text());
    const before = await scrape();
    const wide = { ...bindings, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "wide", limit: 100, period: "1h" }] }) };
    const statuses = [];
    for (const path of ["/status/201", "/status/302", "/status/404", "/status/404", "/status/503"]) {
      statuses.push((await app.request(`https://limiter.test${path}`, { headers: { "x-api-key": "origin-counted" } }, wide)).status);
    }
    // A port nothing listens on; an origin that never answers, against a 50 ms timeout.
    const unreachable = { ...wide, ORIGIN_URL: "http://127.0.0.1:9" };
    statuses.push((await app.request("https://limiter.test/down", { headers: { "x-api-key": "origin-counted" } }, unreachable)).status);
    const silent = { ...wide, ORIGIN: { fetch: () => new Promise<Response>(() => undefined) }, ORIGIN_TIMEOUT_SECONDS: "0.05" };
    statuses.push((await app.request("https://limiter.test/slow", { headers: { "x-api-key": "origin-counted" } }, silent)).status);
    expect(statuses).toEqual([201, 302, 404, 404, 503, 502, 504]);

    const after = await scrape();
    const sent = (series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0);
    expect(
      ["2xx", "3xx", "4xx", "5xx", "unreachable", "timeout"].map((answer) => sent(`ratelimit_origin_responses_total{answer="${answer}"}`)),
    ).toEqual([1, 1, 2, 1, 1, 1]);
    // Timed: the five the origin answered, not the proxy's own.
    expect(sent("ratelimit_origin_seconds_count")).toBe(5);
    expect(after.get('ratelimit_origin_seconds_bucket{le="+Inf"}')).toBe(after.get("ratelimit_origin_seconds_count"));
    const stats = (await (await admin("/stats", { headers: auth })).json()) as Stats;
    expect(stats.lastHour.origin?.answers).toMatchObject({ unreachable: expect.any(Number), timeout: expect.any(Number) });
    expect(stats.lastHour.origin?.latency.count).toBeGreaterThanOrEqual(5);
  });

  it("answers 500 naming RATE_LIMIT_METRICS when it is not bound", async () => {
    const { RATE_LIMIT_METRICS: _, ...unbound } = bindings;
    const response = await admin("/metrics", { headers: auth }, unbound);
    expect(response.status).toBe(500);
    expect(((await response.json()) as { detail: string }).detail).toMatch(/^RATE_LIMIT_METRICS: not bound/);
  });

  it("counts nothing when the middleware's metrics are off", async () => {
    const quiet = createApp({ clock: new ManualClock(), metrics: false });
    const headers = { "x-api-key": "unmetered-client" };
    await useClockFor(headers, new ManualClock());
    const policy = JSON.stringify({ rules: [{ name: "unmetered", limit: 1, period: "1h" }] });
    isolateCounters.drain();
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await quiet.request("https://limiter.test/api", { headers }, { ...bindings, RATE_LIMIT_POLICY: policy })).status);
    expect(statuses).toEqual([200, 429, 429]);
    expect(isolateCounters.drain()).toEqual(emptyTally());
  });
});

describe("the dashboard", () => {
  const app = createApp();

  it("is served without the token, holds none, and allows only its own scripts and styles, uPlot's among them", async () => {
    const response = await app.request("https://limiter.test/_ratelimit/dashboard", {}, bindings);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const policy = response.headers.get("Content-Security-Policy") ?? "";
    const hash = "'sha256-[A-Za-z0-9+/]+=*'";
    expect(policy).toMatch(new RegExp(`^default-src 'none'; script-src ${hash} ${hash}; style-src ${hash} ${hash}; connect-src 'self'`));
    expect(policy).not.toContain("unsafe");
    expect(policy).toContain("frame-ancestors 'none'");
    const page = await response.text();
    expect(page).not.toContain(TOKEN);
    // Each inline script's and style's hash is one the policy allows, and nothing else is allowed.
    const hashes = async (tag: string) =>
      Promise.all(
        [...page.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map(async ([, text]) => {
          const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
          return `'sha256-${btoa(String.fromCharCode(...digest))}'`;
        }),
      );
    expect(policy).toContain(`script-src ${(await hashes("script")).join(" ")};`);
    expect(policy).toContain(`style-src ${(await hashes("style")).join(" ")};`);
    // uPlot, inlined: no request leaves the page for a script.
    expect(page).toContain("uPlot");
    expect(page).not.toMatch(/<script[^>]+src=/);
  });
});
