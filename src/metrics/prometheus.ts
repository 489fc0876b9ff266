import type { MetricsReport } from "./metrics-object.ts";
import { ANSWERED_BY, CALL_SECONDS_BUCKETS, OUTCOMES } from "./tally.ts";

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

  const calls = report.totals.objectCalls;
  lines.push("# HELP ratelimit_object_call_seconds Latency of the Worker's calls to the rate limiter's Durable Objects.");
  lines.push("# TYPE ratelimit_object_call_seconds histogram");
  let cumulative = 0;
  CALL_SECONDS_BUCKETS.forEach((bound, index) => {
    cumulative += calls.buckets[index] ?? 0;
    lines.push(`ratelimit_object_call_seconds_bucket{le="${bound}"} ${cumulative}`);
  });
  lines.push(`ratelimit_object_call_seconds_bucket{le="+Inf"} ${calls.count}`);
  lines.push(`ratelimit_object_call_seconds_sum ${calls.sumSeconds}`);
  lines.push(`ratelimit_object_call_seconds_count ${calls.count}`);
  return `${lines.join("\n")}\n`;
}
