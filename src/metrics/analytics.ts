import { answeredByTotals, OUTCOMES, outcomeTotal, type Tally } from "./tally.ts";

/**
 * The columns of each data point, in order: `double1` … `double10`. docs/metrics.md queries them by these positions,
 * so a column is only ever added at the end.
 */
export const ANALYTICS_DOUBLES = [
  ...OUTCOMES,
  "near_limit",
  "answered_by_object",
  "answered_by_lease",
  "answered_by_cached_denial",
  "most_denied_client_denials",
] as const;

/**
 * A flush's data points for Workers Analytics Engine: one per rule, never one per request. `index1` and `blob1` are
 * the rule; `blob2` is the client this isolate saw denied most by it since its last flush (a key's hash, as the logs
 * show it), with its denials in the last double. Decisions are counted once per rule they were decided by.
 */
export function analyticsDataPoints(tally: Tally): AnalyticsEngineDataPoint[] {
  return Object.entries(tally.rules).map(([rule, counts]) => {
    const mostDenied = counts.topDenied[0];
    const answered = answeredByTotals(counts.decisions);
    return {
      indexes: [rule],
      blobs: [rule, mostDenied?.client ?? ""],
      doubles: [
        ...OUTCOMES.map((outcome) => outcomeTotal(counts, outcome)),
        counts.nearLimit,
        answered.object,
        answered.lease,
        answered.cached_denial,
        mostDenied?.count ?? 0,
      ],
    };
  });
}
