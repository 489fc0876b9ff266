import { withTimeout } from "../runtime/timeout.ts";
import { analyticsDataPoints } from "./analytics.ts";
import { type DecisionCounters, isolateCounters, KEY_LISTS, type KeyLists } from "./decision-counters.ts";
import { type Flush, METRICS_SHARDS, metricsObjectName, type RateLimitMetrics } from "./metrics-object.ts";
import { isEmptyTally, type Tally } from "./tally.ts";

/** How often an isolate sends what it counted, at most. */
export const FLUSH_INTERVAL_MS = 10_000;

/** Flushes kept while the metrics object cannot be reached (five minutes' worth); older ones are dropped, and logged. */
const MAX_UNACKNOWLEDGED = 30;

/** The namespace of the `RateLimitMetrics` class, as the flusher and the admin API call it. */
export type MetricsNamespace = Pick<DurableObjectNamespace<RateLimitMetrics>, "getByName">;

/** Where an isolate's counts go: either, both or neither may be bound. */
export interface MetricsSinks {
  /** `RATE_LIMIT_METRICS`: the metrics objects, which the admin API's /metrics, /stats and dashboard read. */
  objects: MetricsNamespace | undefined;
  /** `RATE_LIMIT_ANALYTICS`: a Workers Analytics Engine dataset. */
  analytics: AnalyticsEngineDataset | undefined;
}

function isNamespace(value: unknown): value is MetricsNamespace {
  return typeof value === "object" && value !== null && "getByName" in value;
}

function isDataset(value: unknown): value is AnalyticsEngineDataset {
  return typeof value === "object" && value !== null && "writeDataPoint" in value;
}

/** The sinks an environment binds: `RATE_LIMIT_METRICS` and `RATE_LIMIT_ANALYTICS`. */
export function metricsSinksOf(env: unknown): MetricsSinks {
  const bindings = (env ?? {}) as Record<string, unknown>;
  const metrics = bindings.RATE_LIMIT_METRICS;
  const analytics = bindings.RATE_LIMIT_ANALYTICS;
  return { objects: isNamespace(metrics) ? metrics : undefined, analytics: isDataset(analytics) ? analytics : undefined };
}

/** Whether a Worker's environment binds somewhere to send decision counts (`RATE_LIMIT_METRICS` or `RATE_LIMIT_ANALYTICS`). */
export function bindsMetricsSink(env: Record<string, unknown>): boolean {
  return env.RATE_LIMIT_METRICS !== undefined || env.RATE_LIMIT_ANALYTICS !== undefined;
}

/** How long a send to the metrics object may take before it counts as failed (and is sent again with the next flush). */
const SEND_TIMEOUT_MS = 5_000;

/**
 * Sends an isolate's counts every `FLUSH_INTERVAL_MS` at most, in the background of a request that finds a flush due:
 * data points to Analytics Engine, and a numbered flush to this isolate's metrics object, kept until that object
 * acknowledges it so that a failed send is retried and a repeated one added once. An isolate that ends takes its
 * last unsent counts with it (docs/metrics.md). Nothing here throws into a request.
 */
export class MetricsFlusher {
  private nextFlushAtMs: number | undefined;
  /** Random, so drawn at the first flush: a Worker may not draw random values at start-up. */
  private isolateId: string | undefined;
  private sequence = 0;
  private unacknowledged: Flush[] = [];
  /** The send under way, if any. */
  private sending: Promise<void> | undefined;

  constructor(
    private readonly counters: DecisionCounters,
    private readonly sendTimeoutMs = SEND_TIMEOUT_MS,
  ) {}

  /**
   * Starts a flush in `ctx.waitUntil` when one is due at `nowMs`; the first request of an isolate only sets the time.
   * Called on every request: when none is due, it only compares two numbers.
   */
  flushIfDue(env: unknown, nowMs: number, ctx: Pick<ExecutionContext, "waitUntil"> | undefined): void {
    if (ctx === undefined || (this.nextFlushAtMs !== undefined && nowMs < this.nextFlushAtMs)) return;
    const first = this.nextFlushAtMs === undefined;
    this.nextFlushAtMs = nowMs + FLUSH_INTERVAL_MS;
    if (!first) ctx.waitUntil(this.flush(metricsSinksOf(env)));
  }

  /**
   * Sends what was counted since the last flush, with every flush not yet acknowledged, after any send under way;
   * resolves when it is over. Never rejects: a failure is logged, and its flushes kept for the next.
   */
  async flush(sinks: MetricsSinks): Promise<void> {
    const tally = this.counters.drain();
    const ends = this.counters.drainEnds();
    const anyEnds = KEY_LISTS.some((list) => ends[list].length > 0);
    if (sinks.objects && (!isEmptyTally(tally) || anyEnds)) this.keep(tally, ends);
    if (!isEmptyTally(tally)) {
      try {
        if (sinks.analytics) for (const point of analyticsDataPoints(tally)) sinks.analytics.writeDataPoint(point);
      } catch (error) {
        // Analytics Engine refused a point (its limits): the metrics objects still have the counts.
        console.error(JSON.stringify({ event: "analytics-write-failed", error: String(error) }));
      }
    }
    const objects = sinks.objects;
    if (!objects) return;
    // One send at a time, each bounded by its timeout; what a send under way does not carry goes after it.
    while (this.sending) await this.sending;
    if (this.unacknowledged.length === 0) return;
    this.sending = this.send(objects).finally(() => {
      this.sending = undefined;
    });
    await this.sending;
  }

  /** Numbers a tally (and the keys seen with it, each list only when it has any) and keeps it until its metrics object acknowledges it. */
  private keep(tally: Tally, ends: KeyLists): void {
    this.isolateId ??= crypto.randomUUID();
    const flush: Flush = { isolateId: this.isolateId, sequence: ++this.sequence, tally };
    for (const list of KEY_LISTS) if (ends[list].length > 0) flush[list] = ends[list];
    this.unacknowledged.push(flush);
    const dropped = this.unacknowledged.splice(0, this.unacknowledged.length - MAX_UNACKNOWLEDGED);
    if (dropped.length > 0) console.error(JSON.stringify({ event: "metrics-dropped", flushes: dropped.length }));
  }

  private async send(objects: MetricsNamespace): Promise<void> {
    const flushes = this.unacknowledged.slice();
    if (this.isolateId === undefined) return;
    try {
      // The isolate's shard: its flushes always go to the same object, which numbers them.
      const shard = Number.parseInt(this.isolateId.slice(0, 8), 16) % METRICS_SHARDS;
      const adding = objects.getByName(metricsObjectName(shard)).add(flushes);
      const acknowledged = await withTimeout(adding, this.sendTimeoutMs, () => new Error(`no answer in ${this.sendTimeoutMs} ms`));
      this.unacknowledged = this.unacknowledged.filter((flush) => flush.sequence > acknowledged);
    } catch (error) {
      // Kept for the next flush: the metrics must not fail a request, and a retry is added once.
      console.error(JSON.stringify({ event: "metrics-flush-failed", pending: this.unacknowledged.length, error: String(error) }));
    }
  }
}

/** This isolate's flusher, of its counters. */
export const isolateMetricsFlusher = new MetricsFlusher(isolateCounters);
