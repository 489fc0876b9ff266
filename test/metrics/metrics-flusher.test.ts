import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DecisionCounters } from "../../src/metrics/decision-counters.ts";
import { FLUSH_INTERVAL_MS, MetricsFlusher, type MetricsNamespace } from "../../src/metrics/metrics-flusher.ts";
import type { Flush } from "../../src/metrics/metrics-object.ts";
import { readMetrics } from "../../src/metrics/metrics-report.ts";
import type { Decision } from "../../src/object/protocol.ts";

function decision(rule: string, allowed: boolean): Decision {
  return {
    allowed,
    rules: [
      {
        name: rule,
        periodSeconds: 60,
        mode: "enforce",
        allowed,
        limit: 10,
        remaining: allowed ? 5 : 0,
        resetSeconds: 30,
        retryAfterSeconds: allowed ? 0 : 6,
        retryAfterMs: allowed ? 0 : 6000,
      },
    ],
  };
}

async function allowedCount(rule: string): Promise<number> {
  const report = await readMetrics(env.RATE_LIMIT_METRICS);
  if ("missingShards" in report) throw new Error(report.error);
  const counts = report.totals.rules[rule]?.decisions.allowed;
  return (counts?.object ?? 0) + (counts?.lease ?? 0) + (counts?.cached_denial ?? 0);
}

describe("an isolate's metrics flusher", () => {
  it("sends nothing within the interval, then everything counted since, to the metrics objects", async () => {
    const counters = new DecisionCounters();
    const flusher = new MetricsFlusher(counters);
    const started: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => void started.push(promise) };
    for (let i = 0; i < 4; i++) counters.record(decision("flushed-on-time", true), "object", "ip:192.0.2.1");
    flusher.flushIfDue(env, 1_000, ctx);
    flusher.flushIfDue(env, 1_000 + FLUSH_INTERVAL_MS - 1, ctx);
    expect(started).toHaveLength(0);
    flusher.flushIfDue(env, 1_000 + FLUSH_INTERVAL_MS, ctx);
    expect(started).toHaveLength(1);
    await Promise.all(started);
    expect(await allowedCount("flushed-on-time")).toBe(4);
    // Drained: the next flush sends only what came after.
    counters.record(decision("flushed-on-time", true), "lease", "ip:192.0.2.1");
    flusher.flushIfDue(env, 1_000 + 2 * FLUSH_INTERVAL_MS, ctx);
    await Promise.all(started);
    expect(await allowedCount("flushed-on-time")).toBe(5);
  });

  it("sends a flush again until it is acknowledged, and it is added once however many times it arrived", async () => {
    const counters = new DecisionCounters();
    const flusher = new MetricsFlusher(counters);
    const failures = ["before", "after"];
    // The first call fails before it reaches the object, the second after the object added it (the reply is lost).
    const flaky: MetricsNamespace = {
      getByName: (name) =>
        ({
          async add(flushes: Flush[]) {
            const failure = failures.shift();
            if (failure === "before") throw new Error("network");
            const acknowledged = await env.RATE_LIMIT_METRICS.getByName(name).add(flushes);
            if (failure === "after") throw new Error("reply lost");
            return acknowledged;
          },
        }) as unknown as ReturnType<MetricsNamespace["getByName"]>,
    };
    const sinks = { objects: flaky, analytics: undefined };
    counters.record(decision("flushed-once", true), "object", "ip:192.0.2.1");
    await flusher.flush(sinks);
    expect(await allowedCount("flushed-once")).toBe(0);
    counters.record(decision("flushed-once", true), "object", "ip:192.0.2.1");
    await flusher.flush(sinks);
    expect(await allowedCount("flushed-once")).toBe(2);
    counters.record(decision("flushed-once", true), "object", "ip:192.0.2.1");
    await flusher.flush(sinks);
    expect(await allowedCount("flushed-once")).toBe(3);
  });

  it("gives up on a send that does not answer in time, and sends its counts again with the next flush", async () => {
    const counters = new DecisionCounters();
    const flusher = new MetricsFlusher(counters, 50);
    let hung = true;
    const slow: MetricsNamespace = {
      getByName: (name) =>
        ({
          add(flushes: Flush[]) {
            if (hung) {
              hung = false;
              return new Promise(() => {});
            }
            return env.RATE_LIMIT_METRICS.getByName(name).add(flushes);
          },
        }) as unknown as ReturnType<MetricsNamespace["getByName"]>,
    };
    counters.record(decision("flushed-after-a-hang", true), "object", "ip:192.0.2.1");
    await flusher.flush({ objects: slow, analytics: undefined });
    expect(await allowedCount("flushed-after-a-hang")).toBe(0);
    await flusher.flush({ objects: slow, analytics: undefined });
    expect(await allowedCount("flushed-after-a-hang")).toBe(1);
  });

  it("keeps at most 30 unacknowledged flushes while the metrics object is unreachable, dropping the oldest", async () => {
    const counters = new DecisionCounters();
    const flusher = new MetricsFlusher(counters);
    let reachable = false;
    const outage: MetricsNamespace = {
      getByName: (name) =>
        ({
          add: (flushes: Flush[]) =>
            reachable ? env.RATE_LIMIT_METRICS.getByName(name).add(flushes) : Promise.reject(new Error("unreachable")),
        }) as unknown as ReturnType<MetricsNamespace["getByName"]>,
    };
    // 32 flushes of one admission each, the first two past what is kept.
    for (let i = 0; i < 32; i++) {
      counters.record(decision("kept-through-an-outage", true), "object", "ip:192.0.2.1");
      await flusher.flush({ objects: outage, analytics: undefined });
    }
    reachable = true;
    await flusher.flush({ objects: outage, analytics: undefined });
    expect(await allowedCount("kept-through-an-outage")).toBe(30);
  });

  it("writes one Analytics Engine data point per rule per flush, the most denied client in it", async () => {
    const counters = new DecisionCounters();
    const flusher = new MetricsFlusher(counters);
    // Analytics Engine cannot be read back locally: this dataset records what is written.
    const points: AnalyticsEngineDataPoint[] = [];
    const analytics = { writeDataPoint: (point?: AnalyticsEngineDataPoint) => point && points.push(point) };
    for (let i = 0; i < 100; i++) counters.record(decision("analytics-a", true), "lease", "ip:192.0.2.1");
    for (let i = 0; i < 3; i++) counters.record(decision("analytics-b", false), "cached_denial", "ip:192.0.2.7");
    counters.record(decision("analytics-b", false), "object", "ip:192.0.2.8");
    await flusher.flush({ objects: undefined, analytics });
    expect(points).toEqual([
      { indexes: ["analytics-a"], blobs: ["analytics-a", ""], doubles: [100, 0, 0, 0, 0, 0, 0, 100, 0, 0] },
      { indexes: ["analytics-b"], blobs: ["analytics-b", "ip:192.0.2.7"], doubles: [0, 4, 0, 0, 0, 0, 1, 0, 3, 3] },
    ]);
    await flusher.flush({ objects: undefined, analytics });
    expect(points).toHaveLength(2);
  });
});
