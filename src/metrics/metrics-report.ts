import { KEY_LISTS, latestEnds } from "./decision-counters.ts";
import type { MetricsNamespace } from "./metrics-flusher.ts";
import { METRICS_SHARDS, type MetricsReport, metricsObjectName, type ReadOptions, SPAN_MS } from "./metrics-object.ts";
import type { TimedTally } from "./series.ts";
import {
  addTally,
  answeredByTotals,
  CALL_SECONDS_BUCKETS,
  type DeniedClient,
  emptyTally,
  type Histogram,
  histogramQuantile,
  ORIGIN_SECONDS_BUCKETS,
  type OriginAnswer,
  OUTCOMES,
  type Outcome,
  outcomeTotal,
  type RequestCounts,
  type Tally,
} from "./tally.ts";

/** The metrics objects that did not answer a read, by name, and the first error. */
export interface MissingShards {
  missingShards: string[];
  error: string;
}

/**
 * Every metrics object's report merged: the whole deployment's totals and last hour, as the isolates flushed them.
 * All or nothing: totals without a shard would make Prometheus counters go down.
 */
export async function readMetrics(namespace: MetricsNamespace, options: ReadOptions = {}): Promise<MetricsReport | MissingShards> {
  const names = Array.from({ length: METRICS_SHARDS }, (_, shard) => metricsObjectName(shard));
  const reads = await Promise.allSettled(names.map((name) => namespace.getByName(name).read(options)));
  const failed = reads.flatMap((read, index) =>
    read.status === "rejected" ? [{ name: names[index] as string, reason: read.reason }] : [],
  );
  if (failed.length > 0) return { missingShards: failed.map(({ name }) => name), error: String(failed[0]?.reason) };
  const reports = reads.flatMap((read) => (read.status === "fulfilled" ? [read.value] : []));
  const totals = emptyTally();
  for (const report of reports) addTally(totals, report.totals);
  const merged: MetricsReport = {
    totals,
    minutes: mergeSeries(reports.map((report) => report.minutes)),
    blocks: [],
    leases: [],
    holds: [],
  };
  // A metrics object of the Worker's previous version reports none.
  for (const list of KEY_LISTS)
    merged[list] = latestEnds(
      reports.flatMap((report) => report[list] ?? []),
      0,
    );
  if (options.spans) merged.spans = mergeSeries(reports.map((report) => report.spans ?? []));
  return merged;
}

/** Several objects' series as one: tallies of the same start added up, oldest first. */
function mergeSeries(seriesList: ReadonlyArray<readonly TimedTally[]>): TimedTally[] {
  const byStart = new Map<number, Tally>();
  for (const series of seriesList) {
    for (const { startMs, tally } of series) {
      let into = byStart.get(startMs);
      if (!into) {
        into = emptyTally();
        byStart.set(startMs, into);
      }
      addTally(into, tally);
    }
  }
  return [...byStart].sort(([a], [b]) => a - b).map(([startMs, tally]) => ({ startMs, tally }));
}

/** One rule's decisions by outcome, how many were near the limit, and how they were answered. */
export interface RuleSummary {
  outcomes: Record<Outcome, number>;
  nearLimit: number;
  answeredBy: { object: number; lease: number; cached_denial: number };
}

/** Object-call latency: how many calls, and the quantiles the dashboard shows (null without calls). */
export interface LatencySummary {
  count: number;
  p50Seconds: number | null;
  p99Seconds: number | null;
}

/** How the origin answered the proxied requests, and its latency to response headers. */
export interface OriginSummary {
  answers: Record<OriginAnswer, number>;
  latency: LatencySummary;
}

/** A tally as `/stats` shows it: requests, each rule's verdicts, and object-call latency; the origin's answers once counted. */
export interface Summary {
  requests: RequestCounts;
  rules: Record<string, RuleSummary>;
  objectCalls: LatencySummary;
  /** Only the shipped Worker's proxy counts the origin's answers: absent until it has. */
  origin?: OriginSummary;
}

/** The ranges `/stats?range=` takes: how long, and the length of each of its series' points. */
export const STATS_RANGES = {
  "15m": { durationMs: 15 * 60_000, stepMs: 60_000 },
  "1h": { durationMs: 60 * 60_000, stepMs: 60_000 },
  "24h": { durationMs: 24 * 60 * 60_000, stepMs: SPAN_MS },
} as const;

export type StatsRange = keyof typeof STATS_RANGES;

/** Whether a range's series needs the metrics objects' spans (a day's), rather than their minutes. */
export function rangeNeedsSpans(range: StatsRange): boolean {
  return STATS_RANGES[range].stepMs !== 60_000;
}

/** What `GET {prefix}/stats` answers, and the dashboard draws. */
export interface Stats {
  /** When the report was read, epoch ms. */
  generatedAtMs: number;
  /**
   * The range asked for (`?range=`, default 1h): its first point's start and its end (the current point's end),
   * epoch ms, and the length of each point.
   */
  range: { name: StatsRange; startMs: number; endMs: number; stepMs: number };
  /** The range's points, oldest first, each what was counted in its `stepMs` from `startMs`; points without a flush are absent. */
  series: Array<Summary & { startMs: number }>;
  /** The range's points added up. */
  inRange: Summary;
  /** Since the metrics objects were created. */
  totals: Summary & { objectCalls: LatencySummary & { histogram: Histogram } };
  /** The last hour's minutes added up. */
  lastHour: Summary;
  /** The last hour, minute by minute, oldest first; minutes without a flush are absent. */
  minutes: Array<Summary & { startMs: number }>;
  /** Per rule, the clients it denied most in the last hour (key hashes, as the logs show them); counts are approximate. */
  topDenied: Record<string, DeniedClient[]>;
}

function summarizeRules(tallies: Tally["rules"]): Record<string, RuleSummary> {
  const rules: Record<string, RuleSummary> = {};
  for (const [name, rule] of Object.entries(tallies)) {
    const outcomes = {} as Record<Outcome, number>;
    for (const outcome of OUTCOMES) outcomes[outcome] = outcomeTotal(rule, outcome);
    rules[name] = { outcomes, nearLimit: rule.nearLimit, answeredBy: answeredByTotals(rule.decisions) };
  }
  return rules;
}

function summarize(tally: Tally): Summary {
  const summary: Summary = {
    requests: tally.requests,
    rules: summarizeRules(tally.rules),
    objectCalls: summarizeLatency(tally.objectCalls),
  };
  if (tally.origin) {
    summary.origin = { answers: tally.origin.answers, latency: summarizeLatency(tally.origin.latency, ORIGIN_SECONDS_BUCKETS) };
  }
  return summary;
}

function summarizeLatency(histogram: Histogram, bounds: readonly number[] = CALL_SECONDS_BUCKETS): LatencySummary {
  return {
    count: histogram.count,
    p50Seconds: histogramQuantile(histogram, 0.5, bounds) ?? null,
    p99Seconds: histogramQuantile(histogram, 0.99, bounds) ?? null,
  };
}

/** The report as the JSON of `/stats`, with the series of `range` (whose report must hold spans if it needs them). */
export function statsOf(report: MetricsReport, generatedAtMs: number, rangeName: StatsRange = "1h"): Stats {
  const { durationMs, stepMs } = STATS_RANGES[rangeName];
  const endMs = generatedAtMs - (generatedAtMs % stepMs) + stepMs;
  const range = { name: rangeName, startMs: endMs - durationMs, endMs, stepMs };
  const points = (rangeNeedsSpans(rangeName) ? (report.spans ?? []) : report.minutes).filter(
    ({ startMs }) => startMs >= range.startMs && startMs < endMs,
  );
  const inRange = emptyTally();
  for (const { tally } of points) addTally(inRange, tally);
  const lastHour = emptyTally();
  for (const { tally } of report.minutes) addTally(lastHour, tally);
  const topDenied: Record<string, DeniedClient[]> = {};
  for (const [name, rule] of Object.entries(lastHour.rules)) topDenied[name] = rule.topDenied;
  return {
    generatedAtMs,
    range,
    series: points.map(({ startMs, tally }) => ({ startMs, ...summarize(tally) })),
    inRange: summarize(inRange),
    totals: {
      ...summarize(report.totals),
      objectCalls: { ...summarizeLatency(report.totals.objectCalls), histogram: report.totals.objectCalls },
    },
    lastHour: summarize(lastHour),
    minutes: report.minutes.map(({ startMs, tally }) => ({ startMs, ...summarize(tally) })),
    topDenied,
  };
}
