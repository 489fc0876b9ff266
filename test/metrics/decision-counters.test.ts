import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DecisionCounters, isolateCounters, latestEnds, MAX_KEY_ENDS, outcomeOf } from "../../src/metrics/decision-counters.ts";
import { emptyTally } from "../../src/metrics/tally.ts";
import { TopK } from "../../src/metrics/top-k.ts";
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
    const { requests, rules } = counters.drain();
    expect(requests.allowed).toEqual({ object: 1, lease: 1, cached_denial: 0 });
    expect(rules.api?.decisions.allowed).toEqual({ object: 1, lease: 1, cached_denial: 0 });
    expect(rules.tight?.decisions.allowed).toEqual({ object: 1, lease: 1, cached_denial: 0 });
    // Below a fifth of its limit of 100 left: 19 is near it, 20 is not.
    expect(rules.tight?.nearLimit).toBe(1);
    // Drained: the counters start again from zero.
    expect(counters.drain()).toEqual(emptyTally());
  });

  it("counts a denied request only under the rules that denied it, which were charged nothing either", () => {
    const counters = new DecisionCounters();
    const denied = {
      allowed: false,
      rules: [
        verdict({ remaining: 1 }),
        verdict({ name: "tight", allowed: false, remaining: 0 }),
        verdict({ name: "watch", allowed: false, mode: "shadow" as const, remaining: 0 }),
      ],
    };
    counters.record(denied, "cached_denial", "key:b");
    counters.record(denied, "object", "key:b");
    const { requests, rules } = counters.drain();
    expect(requests.denied).toEqual({ object: 1, lease: 0, cached_denial: 1 });
    expect(Object.keys(rules)).toEqual(["tight"]);
    expect(rules.tight?.decisions.denied).toEqual({ object: 1, lease: 0, cached_denial: 1 });
    expect(rules.tight?.topDenied).toEqual([{ client: "key:b", count: 2 }]);
    expect(rules.tight?.nearLimit).toBe(0);
  });

  it("puts each object call's latency in its bucket", () => {
    const counters = new DecisionCounters();
    for (const seconds of [0.0005, 0.001, 0.02, 3]) counters.recordObjectCall(seconds);
    const { objectCalls } = counters.drain();
    expect(objectCalls.count).toBe(4);
    expect(objectCalls.sumSeconds).toBeCloseTo(3.0215);
    // Buckets up to 0.001, 0.0025, 0.005, 0.01, 0.025, …, 2.5, then +Inf.
    expect(objectCalls.buckets).toEqual([2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
  });

  it("remembers each blocked key once, at its latest end, and at most the 100 latest-ending until drained", () => {
    const counters = new DecisionCounters();
    counters.recordEnd("blocks", "key:a", 5_000);
    counters.recordEnd("blocks", "key:a", 9_000);
    counters.recordEnd("blocks", "key:a", 7_000);
    for (let i = 0; i < 300; i++) counters.recordEnd("blocks", `key:many-${i}`, 1_000 + i);
    const drained = counters.drainEnds().blocks;
    expect(drained).toHaveLength(MAX_KEY_ENDS);
    expect(drained[0]).toEqual({ object: "key:a", untilMs: 9_000 });
    // The earliest-ending are the ones forgotten.
    expect(drained[1]).toEqual({ object: "key:many-299", untilMs: 1_299 });
    expect(drained.at(-1)).toEqual({ object: "key:many-201", untilMs: 1_201 });
    expect(counters.drainEnds().blocks).toEqual([]);
  });
});

describe("latestEnds", () => {
  it("keeps one entry per key at its latest end, drops those ended, latest-ending first", () => {
    const candidates = [
      { object: "key:b", untilMs: 2_000 },
      { object: "key:a", untilMs: 3_000 },
      { object: "key:b", untilMs: 4_000 },
      { object: "key:ended", untilMs: 1_000 },
    ];
    expect(latestEnds(candidates, 1_000)).toEqual([
      { object: "key:b", untilMs: 4_000 },
      { object: "key:a", untilMs: 3_000 },
    ]);
    expect(latestEnds(candidates, 0, 1)).toEqual([{ object: "key:b", untilMs: 4_000 }]);
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
    const bindings = { ...env, RATE_LIMIT_POLICY: JSON.stringify({ rules: [{ name: "counted", limit: 5, period: "1s" }] }) };
    isolateCounters.drain();
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await app.request("https://limiter.test/", { headers }, bindings)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const { requests, rules, objectCalls } = isolateCounters.drain();
    const counted = rules.counted;
    // The second request brought a lease of 2 (half of the 4 left): two admitted from it, three by the object.
    expect(counted?.decisions.allowed).toEqual({ object: 3, lease: 2, cached_denial: 0 });
    // The first denial is the object's, the rest the cache's.
    expect(counted?.decisions.denied).toEqual({ object: 1, lease: 0, cached_denial: 2 });
    expect(requests).toEqual({ allowed: { object: 3, lease: 2, cached_denial: 0 }, denied: { object: 1, lease: 0, cached_denial: 2 } });
    expect(counted?.topDenied[0]).toEqual({ client: clientId, count: 3 });
    expect(objectCalls.count).toBe(4);
  });
});
