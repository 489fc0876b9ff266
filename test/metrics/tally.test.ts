import { describe, expect, it } from "vitest";
import {
  addTally,
  emptyDecisions,
  emptyHistogram,
  emptyOrigin,
  emptyRequests,
  emptyTally,
  histogramQuantile,
  isEmptyTally,
  mergeTopDenied,
  ORIGIN_SECONDS_BUCKETS,
  observe,
  type Tally,
} from "../../src/metrics/tally.ts";

function tallyOf(rule: string, allowed: number, denied: number, topDenied: Array<{ client: string; count: number }> = []): Tally {
  const decisions = emptyDecisions();
  decisions.allowed.object = allowed;
  decisions.denied.cached_denial = denied;
  return {
    rules: { [rule]: { decisions, nearLimit: allowed > 0 ? 1 : 0, topDenied } },
    requests: emptyRequests(),
    objectCalls: emptyHistogram(),
  };
}

describe("tallies", () => {
  it("add up per rule, outcome and way of answering, leaving the batch as it was", () => {
    const total = emptyTally();
    const batch = tallyOf("api", 3, 2);
    addTally(total, batch);
    addTally(total, batch);
    addTally(total, tallyOf("login", 1, 0));
    expect(total.rules.api?.decisions.allowed.object).toBe(6);
    expect(total.rules.api?.decisions.denied.cached_denial).toBe(4);
    expect(total.rules.api?.nearLimit).toBe(2);
    expect(total.rules.login?.decisions.allowed.object).toBe(1);
    expect(batch.rules.api?.decisions.allowed.object).toBe(3);
  });

  it("add nothing for a count a batch lacks, so that a flush of another Worker version is never added in part", () => {
    const total = emptyTally();
    addTally(total, tallyOf("api", 3, 0));
    const older = JSON.parse(JSON.stringify(tallyOf("api", 2, 0))) as Record<string, unknown>;
    delete older.requests;
    delete (older.rules as { api: { decisions: Record<string, unknown> } }).api.decisions.degraded_denied;
    delete older.objectCalls;
    addTally(total, older as unknown as Tally);
    expect(total.rules.api?.decisions.allowed.object).toBe(5);
    expect(total.rules.api?.decisions.degraded_denied.object).toBe(0);
    expect(total.objectCalls.count).toBe(0);
  });

  it("merge top denied lists by adding each client's counts and keep the 20 largest", () => {
    const a = Array.from({ length: 20 }, (_, i) => ({ client: `ip:10.0.0.${i}`, count: 20 - i }));
    const merged = mergeTopDenied(a, [
      { client: "ip:10.0.0.19", count: 30 },
      { client: "ip:192.0.2.1", count: 3 },
    ]);
    expect(merged).toHaveLength(20);
    expect(merged[0]).toEqual({ client: "ip:10.0.0.19", count: 31 });
    expect(merged.map((entry) => entry.client)).toContain("ip:192.0.2.1");
    // 21 clients: the one with the smallest count left (10.0.0.18's 2) falls out.
    expect(merged.map((entry) => entry.client)).not.toContain("ip:10.0.0.18");
  });

  it("interpolate a latency quantile within its bucket, as histogram_quantile does", () => {
    const histogram = emptyHistogram();
    expect(histogramQuantile(histogram, 0.5)).toBeUndefined();
    // 10 calls up to 1 ms, 10 between 5 and 10 ms.
    histogram.buckets[0] = 10;
    histogram.buckets[3] = 10;
    histogram.count = 20;
    expect(histogramQuantile(histogram, 0.5)).toBeCloseTo(0.001);
    expect(histogramQuantile(histogram, 0.25)).toBeCloseTo(0.0005);
    expect(histogramQuantile(histogram, 0.75)).toBeCloseTo(0.0075);
    // Beyond the last finite bound, that bound.
    histogram.buckets[11] = 20;
    histogram.count = 40;
    expect(histogramQuantile(histogram, 0.99)).toBe(2.5);
  });

  it("add the origin's answers and latency, present once any batch had them, on the origin's own buckets", () => {
    const total = emptyTally();
    addTally(total, tallyOf("api", 1, 0));
    expect(total.origin).toBeUndefined();
    const origin = emptyOrigin();
    origin.answers["2xx"] = 3;
    origin.answers.timeout = 1;
    for (const seconds of [0.02, 0.2, 20]) observe(origin.latency, seconds, ORIGIN_SECONDS_BUCKETS);
    addTally(total, { ...tallyOf("api", 3, 0), origin });
    addTally(total, { ...tallyOf("api", 1, 0), origin });
    expect(total.origin?.answers).toMatchObject({ "2xx": 6, timeout: 2, "5xx": 0 });
    expect(total.origin?.latency.count).toBe(6);
    // 0.02 s falls in (0.01, 0.025], 0.2 in (0.1, 0.25], 20 in (10, 30].
    expect(total.origin?.latency.buckets).toEqual([0, 0, 2, 0, 0, 2, 0, 0, 0, 0, 0, 2, 0]);
    expect(histogramQuantile(total.origin?.latency ?? emptyHistogram(), 0.99, ORIGIN_SECONDS_BUCKETS)).toBeGreaterThan(10);
    expect(isEmptyTally({ ...emptyTally(), origin })).toBe(false);
  });
});
