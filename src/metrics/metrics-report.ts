import { type BlockCandidate, latestBlocks } from "./decision-counters.ts";
import type { MetricsNamespace } from "./metrics-flusher.ts";
import { METRICS_SHARDS, type MetricsReport, metricsObjectName } from "./metrics-object.ts";
import {
  addTally,
  answeredByTotals,
  type DeniedClient,
  emptyTally,
  type Histogram,
  histogramQuantile,
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
export async function readMetrics(namespace: MetricsNamespace): Promise<MetricsReport | MissingShards> {
  const names = Array.from({ length: METRICS_SHARDS }, (_, shard) => metricsObjectName(shard));
  const reads = await Promise.allSettled(names.map((name) => namespace.getByName(name).read()));
  const failed = reads.flatMap((read, index) =>
    read.status === "rejected" ? [{ name: names[index] as string, reason: read.reason }] : [],
  );
  if (failed.length > 0) return { missingShards: failed.map(({ name }) => name), error: String(failed[0]?.reason) };
  const totals = emptyTally();
  const minutes = new Map<number, Tally>();
  const blocks: BlockCandidate[] = [];
  for (const read of reads) {
    if (read.status === "rejected") continue;
    const report = read.value;
    addTally(totals, report.totals);
    // A metrics object of the Worker's previous version reports none.
    blocks.push(...(report.blocks ?? []));
    for (const { startMs, tally } of report.minutes) {
      let minute = minutes.get(startMs);
      if (!minute) {
        minute = emptyTally();
        minutes.set(startMs, minute);
      }
      addTally(minute, tally);
    }
  }
  return {
    totals,
    minutes: [...minutes].sort(([a], [b]) => a - b).map(([startMs, tally]) => ({ startMs, tally })),
    blocks: latestBlocks(blocks, 0),
  };
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

/** A tally as `/stats` shows it: requests, each rule's verdicts, and object-call latency. */
export interface Summary {
  requests: RequestCounts;
  rules: Record<string, RuleSummary>;
  objectCalls: LatencySummary;
}

/** What `GET {prefix}/stats` answers, and the dashboard draws. */
export interface Stats {
  /** When the report was read, epoch ms. */
  generatedAtMs: number;
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
  return { requests: tally.requests, rules: summarizeRules(tally.rules), objectCalls: summarizeLatency(tally.objectCalls) };
}

function summarizeLatency(histogram: Histogram): LatencySummary {
  return {
    count: histogram.count,
    p50Seconds: histogramQuantile(histogram, 0.5) ?? null,
    p99Seconds: histogramQuantile(histogram, 0.99) ?? null,
  };
}

/** The report as the JSON of `/stats`. */
export function statsOf(report: MetricsReport, generatedAtMs: number): Stats {
  const lastHour = emptyTally();
  for (const { tally } of report.minutes) addTally(lastHour, tally);
  const topDenied: Record<string, DeniedClient[]> = {};
  for (const [name, rule] of Object.entries(lastHour.rules)) topDenied[name] = rule.topDenied;
  return {
    generatedAtMs,
    totals: {
      ...summarize(report.totals),
      objectCalls: { ...summarizeLatency(report.totals.objectCalls), histogram: report.totals.objectCalls },
    },
    lastHour: summarize(lastHour),
    minutes: report.minutes.map(({ startMs, tally }) => ({ startMs, ...summarize(tally) })),
    topDenied,
  };
}
