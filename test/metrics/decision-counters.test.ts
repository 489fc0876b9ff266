import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DecisionCounters, isolateCounters, outcomeOf, TopK } from "../../src/metrics/decision-counters.ts";
import type { RuleVerdict } from "../../src/object/protocol.ts";
import { createApp } from "../../src/worker/app.ts";
import { useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

function verdict(overrides: Partial<RuleVerdict> = {}): RuleVerdict {
  return {
    name: "api",
    periodSeconds: 60,
    mode: "enforce",
    allowed: true,
    limit: 100,
    remaining: 50,
    resetSeconds: 30,
    retryAfterSeconds: 0,
    retryAfterMs: 0,
    ...overrides,
  };
}

describe("DecisionCounters", () => {
  it("names each rule's outcome as Envoy counts them, with the degraded cases apart", () => {
    expect(outcomeOf(verdict())).toBe("allowed");
    expect(outcomeOf(verdict({ allowed: false }))).toBe("denied");
    expect(outcomeOf(verdict({ allowed: false, mode: "shadow" }))).toBe("shadow_denied");
    expect(outcomeOf(verdict({ degraded: true }))).toBe("degraded_allowed");
    expect(outcomeOf(verdict({ allowed: false, degraded: true }))).toBe("degraded_denied");
  });

  it("counts each rule of a decision under its outcome and how it was answered, near-limit admissions apart", () => {
    const counters = new DecisionCounters();
    counters.record({ allowed: true, rules: [verdict(), verdict({ name: "tight", remaining: 19 })] }, "object", "key:a");
    counters.record({ allowed: true, rules: [verdict(), verdict({ name: "tight", remaining: 20 })], leased: true }, "lease", "key:a");
    counters.record(
      { allowed: false, rules: [verdict(), verdict({ name: "tight", allowed: false, remaining: 0 })] },
      "cached_denial",
      "key:b",
    );
    const api = counters.rules().get("api");
    const tight = counters.rules().get("tight");
    expect(api?.decisions.allowed).toEqual({ object: 1, lease: 1, cached_denial: 1 });
    expect(tight?.decisions.allowed).toEqual({ object: 1, lease: 1, cached_denial: 0 });
    expect(tight?.decisions.denied.cached_denial).toBe(1);
    // Below a fifth of its limit of 100 left: 19 is near it, 20 is not.
    expect(tight?.nearLimit).toBe(1);
    expect(tight?.topDenied.top()).toEqual([{ item: "key:b", count: 1 }]);
    expect(api?.topDenied.top()).toEqual([]);
  });

  it("puts each object call's latency in its bucket", () => {
    const counters = new DecisionCounters();
    for (const seconds of [0.0005, 0.001, 0.02, 3]) counters.recordObjectCall(seconds);
    expect(counters.objectCalls.count).toBe(4);
    expect(counters.objectCalls.sumSeconds).toBeCloseTo(3.0215);
    // Buckets up to 0.001, 0.0025, 0.005, 0.01, 0.025, …, 2.5, then +Inf.
    expect(counters.objectCalls.buckets).toEqual([2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
  });
});

describe("TopK", () => {
  it("keeps every item more frequent than 1 / capacity of the stream, in bounded memory", () => {
    const top = new TopK(5);
    // 1,334 items: "heavy" 500 times and "second" 334, both more than 1,334 / 5; 500 others once each.
    for (let i = 0; i < 1_000; i++) {
      top.add(i % 2 === 0 ? "heavy" : `light-${i}`);
      if (i % 3 === 0) top.add("second");
    }
    const kept = top.top();
    expect(kept).toHaveLength(5);
    expect(kept[0]?.item).toBe("heavy");
    expect(kept[0]?.count).toBeGreaterThanOrEqual(500);
    expect(kept.map((entry) => entry.item)).toContain("second");
  });
});

describe("the isolate's counters, through the middleware", () => {
  it("count what the object decided, what leases admitted and what the cache of denials answered", async () => {
    const clock = new ManualClock();
    const headers = { "x-api-key": "counted-client" };
    const clientId = await useClockFor(headers, clock);
    const app = createApp({ clock });
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "counted", limit: 5, period: "1h" }] }) };
    const before = structuredClone(isolateCounters.rules().get("counted")?.decisions);
    const calls = isolateCounters.objectCalls.count;
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await app.request("https://limiter.test/", { headers }, bindings)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const counted = isolateCounters.rules().get("counted");
    const delta = (outcome: "allowed" | "denied", by: "object" | "lease" | "cached_denial") =>
      (counted?.decisions[outcome][by] ?? 0) - (before?.[outcome][by] ?? 0);
    // The second request brought a lease of 2 (half of the 4 left): two admitted from it, three by the object.
    expect([delta("allowed", "object"), delta("allowed", "lease")]).toEqual([3, 2]);
    // The first denial is the object's, the rest the cache's.
    expect([delta("denied", "object"), delta("denied", "cached_denial")]).toEqual([1, 2]);
    expect(counted?.topDenied.top()[0]).toEqual({ item: clientId, count: 3 });
    expect(isolateCounters.objectCalls.count - calls).toBe(4);
  });
});
