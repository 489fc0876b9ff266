import type { MetricsNamespace } from "./metrics-flusher.ts";
import { METRICS_SHARDS, type MetricsReport, metricsObjectName } from "./metrics-object.ts";
import {
  ANSWERED_BY,
  addTally,
  type DeniedClient,
  emptyTally,
  type Histogram,
  histogramQuantile,
  OUTCOMES,
  type Outcome,
  outcomeTotal,
  type Tally,
} from "./tally.ts";

/** Every metrics object's report merged: the whole deployment's totals and last hour, as the isolates flushed them. */
export async function readMetrics(namespace: MetricsNamespace): Promise<MetricsReport> {
  const shards = Array.from({ length: METRICS_SHARDS }, (_, shard) => namespace.getByName(metricsObjectName(shard)).read());
  const totals = emptyTally();
  const minutes = new Map<number, Tally>();
  for (const report of await Promise.all(shards)) {
    addTally(totals, report.totals);
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

/** What `GET {prefix}/stats` answers, and the dashboard draws. */
export interface Stats {
  /** When the report was read, epoch ms. */
  generatedAtMs: number;
  /** Since the metrics objects were created. */
  totals: { rules: Record<string, RuleSummary>; objectCalls: LatencySummary & { histogram: Histogram } };
  /** The last hour's minutes added up. */
  lastHour: { rules: Record<string, RuleSummary>; objectCalls: LatencySummary };
  /** The last hour, minute by minute, oldest first; minutes without a flush are absent. */
  minutes: Array<{ startMs: number; rules: Record<string, RuleSummary>; objectCalls: LatencySummary }>;
  /** Per rule, the clients it denied most in the last hour (key hashes, as the logs show them); counts are upper bounds. */
  topDenied: Record<string, DeniedClient[]>;
}

function summarizeRules(tally: Tally): Record<string, RuleSummary> {
  const rules: Record<string, RuleSummary> = {};
  for (const [name, rule] of Object.entries(tally.rules)) {
    const outcomes = {} as Record<Outcome, number>;
    for (const outcome of OUTCOMES) outcomes[outcome] = outcomeTotal(rule, outcome);
    const answeredBy = { object: 0, lease: 0, cached_denial: 0 };
    for (const outcome of OUTCOMES) for (const by of ANSWERED_BY) answeredBy[by] += rule.decisions[outcome][by];
    rules[name] = { outcomes, nearLimit: rule.nearLimit, answeredBy };
  }
  return rules;
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
      rules: summarizeRules(report.totals),
      objectCalls: { ...summarizeLatency(report.totals.objectCalls), histogram: report.totals.objectCalls },
    },
    lastHour: { rules: summarizeRules(lastHour), objectCalls: summarizeLatency(lastHour.objectCalls) },
    minutes: report.minutes.map(({ startMs, tally }) => ({
      startMs,
      rules: summarizeRules(tally),
      objectCalls: summarizeLatency(tally.objectCalls),
    })),
    topDenied,
  };
}
