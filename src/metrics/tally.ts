/** What an isolate counted between two flushes, as plain data that crosses RPC and storage, and how tallies add up. */

/** How a decision was answered: by an object call, from this isolate's leases, or from its cache of denials. */
export type AnsweredBy = "object" | "lease" | "cached_denial";

/** What one rule's verdict was, as Envoy's rate limit service counts them, with the limiter's degraded cases. */
export type Outcome = "allowed" | "denied" | "shadow_denied" | "degraded_allowed" | "degraded_denied";

export const OUTCOMES: readonly Outcome[] = ["allowed", "denied", "shadow_denied", "degraded_allowed", "degraded_denied"];
export const ANSWERED_BY: readonly AnsweredBy[] = ["object", "lease", "cached_denial"];

/** Upper bounds, in seconds, of the object-call latency histogram's buckets (Prometheus `le`), then +Inf. */
export const CALL_SECONDS_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Clients kept per rule in a top denied list, in an isolate's sketch and in every merge of them. */
export const TOP_DENIED_CAPACITY = 20;

/** A client and how many of its requests a rule denied, as a sketch counts them (docs/metrics.md, Honesty). */
export interface DeniedClient {
  client: string;
  count: number;
}

/** One rule's counts: per outcome and way of answering, how many admissions were near the limit, and its most denied clients. */
export interface RuleTally {
  decisions: Record<Outcome, Record<AnsweredBy, number>>;
  nearLimit: number;
  /** Most denied first, at most `TOP_DENIED_CAPACITY`. */
  topDenied: DeniedClient[];
}

/** A latency histogram, as Prometheus keeps one: a count per bucket (not cumulative), the sum and the count. */
export interface Histogram {
  /** One count per bucket of `CALL_SECONDS_BUCKETS`, then one for +Inf. */
  buckets: number[];
  sumSeconds: number;
  count: number;
}

/** Requests decided by at least one rule: admitted or denied, by how they were answered. */
export type RequestCounts = Record<"allowed" | "denied", Record<AnsweredBy, number>>;

/** Counts of requests, and of decisions per rule, and the latency of object calls. */
export interface Tally {
  requests: RequestCounts;
  rules: Record<string, RuleTally>;
  objectCalls: Histogram;
}

export function emptyDecisions(): Record<Outcome, Record<AnsweredBy, number>> {
  const byOutcome = {} as Record<Outcome, Record<AnsweredBy, number>>;
  for (const outcome of OUTCOMES) byOutcome[outcome] = { object: 0, lease: 0, cached_denial: 0 };
  return byOutcome;
}

export function emptyHistogram(): Histogram {
  return { buckets: new Array(CALL_SECONDS_BUCKETS.length + 1).fill(0), sumSeconds: 0, count: 0 };
}

export function emptyRequests(): RequestCounts {
  return { allowed: { object: 0, lease: 0, cached_denial: 0 }, denied: { object: 0, lease: 0, cached_denial: 0 } };
}

export function emptyTally(): Tally {
  return { requests: emptyRequests(), rules: {}, objectCalls: emptyHistogram() };
}

/** Whether a tally counted nothing. */
export function isEmptyTally(tally: Tally): boolean {
  // Every request counted is counted under at least one rule: no rules, no requests.
  return tally.objectCalls.count === 0 && Object.keys(tally.rules).length === 0;
}

/** How many decisions a rule's tally counts with this outcome, however they were answered. */
export function outcomeTotal(rule: RuleTally, outcome: Outcome): number {
  const byAnswer = rule.decisions[outcome];
  return byAnswer.object + byAnswer.lease + byAnswer.cached_denial;
}

/** How many of these counts were answered each way, whatever their outcome. */
export function answeredByTotals(byOutcome: Partial<Record<string, Record<AnsweredBy, number>>>): Record<AnsweredBy, number> {
  const totals = { object: 0, lease: 0, cached_denial: 0 };
  for (const counts of Object.values(byOutcome)) {
    for (const answeredBy of ANSWERED_BY) totals[answeredBy] += counts?.[answeredBy] ?? 0;
  }
  return totals;
}

/**
 * Two top lists as one: counts of the same client add up, and the largest are kept. Approximate: a client missing
 * from one list counts 0 there, so a merged count may be below the true one, as it may be above it within a sketch.
 */
export function mergeTopDenied(a: readonly DeniedClient[], b: readonly DeniedClient[]): DeniedClient[] {
  const byClient = new Map<string, number>();
  for (const { client, count } of a) byClient.set(client, count);
  for (const { client, count } of b) byClient.set(client, (byClient.get(client) ?? 0) + count);
  return [...byClient]
    .map(([client, count]) => ({ client, count }))
    .sort((x, y) => y.count - x.count || (x.client < y.client ? -1 : 1))
    .slice(0, TOP_DENIED_CAPACITY);
}

/**
 * Adds `batch` into `total`, in place; `batch` is left as it was. A count missing from `batch` (a flush of another
 * version of the Worker, during a deploy) adds nothing, so that a tally is never added in part.
 */
export function addTally(total: Tally, batch: Tally): void {
  for (const outcome of ["allowed", "denied"] as const) {
    for (const answeredBy of ANSWERED_BY) total.requests[outcome][answeredBy] += batch.requests?.[outcome]?.[answeredBy] ?? 0;
  }
  for (const [name, rule] of Object.entries(batch.rules ?? {})) {
    let into = total.rules[name];
    if (!into) {
      into = { decisions: emptyDecisions(), nearLimit: 0, topDenied: [] };
      total.rules[name] = into;
    }
    for (const outcome of OUTCOMES) {
      for (const answeredBy of ANSWERED_BY) into.decisions[outcome][answeredBy] += rule.decisions?.[outcome]?.[answeredBy] ?? 0;
    }
    into.nearLimit += rule.nearLimit ?? 0;
    into.topDenied = mergeTopDenied(into.topDenied, rule.topDenied ?? []);
  }
  const calls = total.objectCalls;
  (batch.objectCalls?.buckets ?? []).slice(0, calls.buckets.length).forEach((count, index) => {
    calls.buckets[index] = (calls.buckets[index] ?? 0) + count;
  });
  calls.sumSeconds += batch.objectCalls?.sumSeconds ?? 0;
  calls.count += batch.objectCalls?.count ?? 0;
}

/**
 * The latency below which a share `q` of a histogram's calls fall, interpolated linearly within its bucket as
 * Prometheus's `histogram_quantile` does; undefined without calls. Beyond the last finite bound it answers that bound.
 */
export function histogramQuantile(histogram: Histogram, q: number): number | undefined {
  if (histogram.count === 0) return undefined;
  const rank = q * histogram.count;
  let below = 0;
  for (let index = 0; index < histogram.buckets.length; index++) {
    const count = histogram.buckets[index] ?? 0;
    if (below + count >= rank && count > 0) {
      const upper = CALL_SECONDS_BUCKETS[index];
      if (upper === undefined) return CALL_SECONDS_BUCKETS[CALL_SECONDS_BUCKETS.length - 1];
      const lower = index === 0 ? 0 : (CALL_SECONDS_BUCKETS[index - 1] as number);
      return lower + (upper - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return CALL_SECONDS_BUCKETS[CALL_SECONDS_BUCKETS.length - 1];
}
