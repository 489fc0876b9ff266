import type { MetricsReport } from "./metrics-object.ts";
import { ANSWERED_BY, CALL_SECONDS_BUCKETS, type Histogram, ORIGIN_ANSWERS, ORIGIN_SECONDS_BUCKETS, OUTCOMES } from "./tally.ts";

/** The media type of the Prometheus text exposition format, version 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A label value as the text format quotes it: backslash, double quote and line feed escaped. */
function labelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/**
 * The report's totals in the Prometheus text exposition format: counters that only grow (each is a sum of every
 * isolate's flushes), so `rate()` gives decisions per second. Every outcome and way of answering is written, zeros
 * included, so that a series exists before its first count.
 */
export function prometheusText(report: MetricsReport): string {
  const lines: string[] = [];
  const rules = Object.entries(report.totals.rules).sort(([a], [b]) => (a < b ? -1 : 1));

  lines.push("# HELP ratelimit_requests_total Requests decided by at least one rule, by outcome and by how they were answered.");
  lines.push("# TYPE ratelimit_requests_total counter");
  for (const outcome of ["allowed", "denied"] as const) {
    for (const answeredBy of ANSWERED_BY) {
      lines.push(
        `ratelimit_requests_total{outcome="${outcome}",answered_by="${answeredBy}"} ${report.totals.requests[outcome][answeredBy]}`,
      );
    }
  }

  lines.push(
    "# HELP ratelimit_decisions_total Rule verdicts, by rule, outcome and how they were answered; a denied request counts only under the rules that denied it.",
  );
  lines.push("# TYPE ratelimit_decisions_total counter");
  for (const [name, rule] of rules) {
    for (const outcome of OUTCOMES) {
      for (const answeredBy of ANSWERED_BY) {
        const labels = `rule="${labelValue(name)}",outcome="${outcome}",answered_by="${answeredBy}"`;
        lines.push(`ratelimit_decisions_total{${labels}} ${rule.decisions[outcome][answeredBy]}`);
      }
    }
  }

  lines.push("# HELP ratelimit_near_limit_total Admissions that left less than 20% of the rule's limit.");
  lines.push("# TYPE ratelimit_near_limit_total counter");
  for (const [name, rule] of rules) lines.push(`ratelimit_near_limit_total{rule="${labelValue(name)}"} ${rule.nearLimit}`);

  lines.push("# HELP ratelimit_object_call_seconds Latency of the Worker's calls to the rate limiter's Durable Objects.");
  histogramLines(lines, "ratelimit_object_call_seconds", report.totals.objectCalls, CALL_SECONDS_BUCKETS);

  const origin = report.totals.origin;
  if (origin) {
    lines.push(
      "# HELP ratelimit_origin_responses_total Requests proxied to the origin, by how they were answered: the origin's status class, or the proxy's own 502 (unreachable) or 504 (timeout).",
    );
    lines.push("# TYPE ratelimit_origin_responses_total counter");
    for (const answer of ORIGIN_ANSWERS) lines.push(`ratelimit_origin_responses_total{answer="${answer}"} ${origin.answers[answer]}`);
    lines.push("# HELP ratelimit_origin_seconds Time to the origin's response headers, from when the request body was sent.");
    histogramLines(lines, "ratelimit_origin_seconds", origin.latency, ORIGIN_SECONDS_BUCKETS);
  }
  return `${lines.join("\n")}\n`;
}

/** A histogram's TYPE line and samples: cumulative buckets, +Inf, the sum and the count. */
function histogramLines(lines: string[], name: string, histogram: Histogram, bounds: readonly number[]): void {
  lines.push(`# TYPE ${name} histogram`);
  let cumulative = 0;
  bounds.forEach((bound, index) => {
    cumulative += histogram.buckets[index] ?? 0;
    lines.push(`${name}_bucket{le="${bound}"} ${cumulative}`);
  });
  lines.push(`${name}_bucket{le="+Inf"} ${histogram.count}`);
  lines.push(`${name}_sum ${histogram.sumSeconds}`);
  lines.push(`${name}_count ${histogram.count}`);
}
