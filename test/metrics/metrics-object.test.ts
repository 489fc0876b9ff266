import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Flush, RateLimitMetrics } from "../../src/metrics/metrics-object.ts";
import { emptyDecisions, emptyHistogram, emptyRequests, type Tally } from "../../src/metrics/tally.ts";
import { ManualClock } from "../manual-clock.ts";

function tallyOf(allowed: number, denied = 0, client = "ip:192.0.2.9"): Tally {
  const decisions = emptyDecisions();
  decisions.allowed.object = allowed;
  decisions.denied.object = denied;
  const topDenied = denied > 0 ? [{ client, count: denied }] : [];
  return { rules: { api: { decisions, nearLimit: 0, topDenied } }, requests: emptyRequests(), objectCalls: emptyHistogram() };
}

function flush(isolateId: string, sequence: number, tally: Tally): Flush {
  return { isolateId, sequence, tally };
}

async function metricsObjectOn(name: string, clock: ManualClock) {
  const stub = env.RATE_LIMIT_METRICS.getByName(name);
  await runInDurableObject(stub, (metrics: RateLimitMetrics) => {
    metrics.clock = clock;
  });
  return stub;
}

describe("a metrics object", () => {
  it("adds each flush once, even when an isolate sends it again, and acknowledges the last sequence", async () => {
    const stub = await metricsObjectOn("test-once", new ManualClock(Date.UTC(2026, 10, 29, 12, 0, 5)));
    expect(await stub.add([flush("isolate-a", 1, tallyOf(3))])).toBe(1);
    // The retry of 1 after it arrived, with 2 behind it.
    expect(await stub.add([flush("isolate-a", 1, tallyOf(3)), flush("isolate-a", 2, tallyOf(4))])).toBe(2);
    expect(await stub.add([flush("isolate-b", 1, tallyOf(10))])).toBe(1);
    const report = await stub.read();
    expect(report.totals.rules.api?.decisions.allowed.object).toBe(17);
  });

  it("keeps a per-minute series of the last hour by its own clock, beside totals that keep growing", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 12, 0, 30));
    const stub = await metricsObjectOn("test-minutes", clock);
    await stub.add([flush("isolate-a", 1, tallyOf(2, 1))]);
    clock.advanceMs(20_000);
    await stub.add([flush("isolate-a", 2, tallyOf(5))]);
    clock.advanceMs(60_000);
    await stub.add([flush("isolate-a", 3, tallyOf(7, 2, "ip:192.0.2.10"))]);
    let report = await stub.read();
    expect(
      report.minutes.map((minute) => [new Date(minute.startMs).toISOString(), minute.tally.rules.api?.decisions.allowed.object]),
    ).toEqual([
      ["2026-11-29T12:00:00.000Z", 7],
      ["2026-11-29T12:01:00.000Z", 7],
    ]);
    expect(report.minutes[1]?.tally.rules.api?.topDenied).toEqual([{ client: "ip:192.0.2.10", count: 2 }]);
    // An hour on, the first minutes have left the series; the totals still count them.
    clock.advanceMs(59 * 60_000);
    await stub.add([flush("isolate-a", 4, tallyOf(1))]);
    report = await stub.read();
    expect(report.minutes.map((minute) => minute.tally.rules.api?.decisions.allowed.object)).toEqual([7, 1]);
    clock.advanceMs(60_000);
    report = await stub.read();
    expect(report.minutes.map((minute) => minute.tally.rules.api?.decisions.allowed.object)).toEqual([1]);
    expect(report.totals.rules.api?.decisions.allowed.object).toBe(15);
  });

  it("keeps the last day in 5-minute spans without top denied clients, read only when asked for, across eviction", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 12, 3, 0));
    const stub = await metricsObjectOn("test-spans", clock);
    await stub.add([flush("isolate-a", 1, tallyOf(2, 1))]);
    clock.advanceMs(60_000);
    await stub.add([flush("isolate-a", 2, tallyOf(3))]);
    clock.advanceMs(2 * 60 * 60_000);
    await stub.add([flush("isolate-a", 3, tallyOf(5))]);
    expect((await stub.read()).spans).toBeUndefined();
    await evictDurableObject(stub);
    await runInDurableObject(stub, (metrics: RateLimitMetrics) => {
      metrics.clock = clock;
    });
    const report = await stub.read({ spans: true });
    expect(report.spans?.map(({ startMs, tally }) => [new Date(startMs).toISOString(), tally.rules.api?.decisions.allowed.object])).toEqual(
      [
        ["2026-11-29T12:00:00.000Z", 5],
        ["2026-11-29T14:00:00.000Z", 5],
      ],
    );
    expect(report.spans?.[0]?.tally.rules.api?.topDenied).toEqual([]);
    expect(report.spans?.[0]?.tally.rules.api?.decisions.denied.object).toBe(1);
    // The minutes keep only the last hour; the spans a day.
    expect(report.minutes.map(({ tally }) => tally.rules.api?.decisions.allowed.object)).toEqual([5]);
    clock.advanceMs(22 * 60 * 60_000);
    expect((await stub.read({ spans: true })).spans?.map(({ tally }) => tally.rules.api?.decisions.allowed.object)).toEqual([5]);
  });

  it("keeps what it acknowledged across eviction, and still adds a flush once", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 12, 0, 0));
    const stub = await metricsObjectOn("test-evicted", clock);
    await stub.add([flush("isolate-a", 1, tallyOf(3))]);
    await evictDurableObject(stub);
    await runInDurableObject(stub, (metrics: RateLimitMetrics) => {
      metrics.clock = clock;
    });
    expect(await stub.add([flush("isolate-a", 1, tallyOf(3))])).toBe(1);
    const report = await stub.read();
    expect(report.totals.rules.api?.decisions.allowed.object).toBe(3);
    expect(report.minutes).toHaveLength(1);
  });

  it("keeps the blocked keys its isolates saw across eviction, each at its latest end, until the block ends", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 12, 0, 0));
    const stub = await metricsObjectOn("test-blocks", clock);
    const nowMs = clock.nowMs();
    await stub.add([
      { ...flush("isolate-a", 1, tallyOf(1)), blocks: [{ object: "key:short", untilMs: nowMs + 60_000 }] },
      { ...flush("isolate-b", 1, tallyOf(1)), blocks: [{ object: "key:long", untilMs: nowMs + 600_000 }] },
    ]);
    // A later block of the same key, and a retry of a flush already added.
    await stub.add([
      { ...flush("isolate-a", 2, tallyOf(0)), blocks: [{ object: "key:short", untilMs: nowMs + 120_000 }] },
      { ...flush("isolate-b", 1, tallyOf(1)), blocks: [{ object: "key:long", untilMs: nowMs + 600_000 }] },
    ]);
    await evictDurableObject(stub);
    await runInDurableObject(stub, (metrics: RateLimitMetrics) => {
      metrics.clock = clock;
    });
    expect((await stub.read()).blocks).toEqual([
      { object: "key:long", untilMs: nowMs + 600_000 },
      { object: "key:short", untilMs: nowMs + 120_000 },
    ]);
    clock.advanceMs(120_000);
    expect((await stub.read()).blocks).toEqual([{ object: "key:long", untilMs: nowMs + 600_000 }]);
  });

  it("forgets an isolate not heard from for an hour", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 12, 0, 0));
    const stub = await metricsObjectOn("test-forgetting", clock);
    await stub.add([flush("isolate-gone", 1, tallyOf(1))]);
    clock.advanceMs(60 * 60_000 + 1);
    await stub.add([flush("isolate-new", 1, tallyOf(1))]);
    const remembered = await runInDurableObject(stub, (_: RateLimitMetrics, state) =>
      Object.keys(state.storage.kv.get<Record<string, unknown>>("isolates") ?? {}),
    );
    expect(remembered).toEqual(["isolate-new"]);
  });

  it("remembers at most 10,000 isolates' numbers, the least recently heard from forgotten first", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 12, 0, 0));
    const stub = await metricsObjectOn("test-many-isolates", clock);
    await stub.add([flush("isolate-oldest", 1, tallyOf(1))]);
    clock.advanceMs(1);
    await stub.add(Array.from({ length: 10_000 }, (_, i) => flush(`isolate-${i}`, 1, tallyOf(1))));
    const remembered = await runInDurableObject(stub, (_: RateLimitMetrics, state) =>
      Object.keys(state.storage.kv.get<Record<string, unknown>>("isolates") ?? {}),
    );
    expect(remembered).toHaveLength(10_000);
    expect(remembered).not.toContain("isolate-oldest");
    expect((await stub.read()).totals.rules.api?.decisions.allowed.object).toBe(10_001);
  });
});
