/** What an isolate counted between two flushes, as plain data that crosses RPC and storage, and how tallies add up. */

/** How a decision was answered: by an object call, from this isolate's leases, or from its cache of denials. */
export type AnsweredBy = "object" | "lease" | "cached_denial";

/** What one rule's verdict was, as Envoy's rate limit service counts them, with the limiter's degraded cases. */
export type Outcome = "allowed" | "denied" | "shadow_denied" | "degraded_allowed" | "degraded_denied";

export const OUTCOMES: readonly Outcome[] = ["allowed", "denied", "shadow_denied", "degraded_allowed", "degraded_denied"];
export const ANSWERED_BY: readonly AnsweredBy[] = ["object", "lease", "cached_denial"];

/** Upper bounds, in seconds, of the object-call latency histogram's buckets (Prometheus `le`), then +Inf. */
export const CALL_SECONDS_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Upper bounds, in seconds, of the origin latency histogram's buckets, then +Inf: an origin is slower than an object. */
export const ORIGIN_SECONDS_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * How a request proxied to the origin was answered: by the origin, with a status of this class, or by the proxy
 * itself, with a 502 when the origin could not be reached or a 504 when it did not answer in time.
 */
export type OriginAnswer = "2xx" | "3xx" | "4xx" | "5xx" | "unreachable" | "timeout";

export const ORIGIN_ANSWERS: readonly OriginAnswer[] = ["2xx", "3xx", "4xx", "5xx", "unreachable", "timeout"];

/** The origin's answers to proxied requests, and the time to their response headers (of those it answered). */
export interface OriginTally {
  answers: Record<OriginAnswer, number>;
  /** Buckets of `ORIGIN_SECONDS_BUCKETS`. */
  latency: Histogram;
}

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
  /** One count per bucket of its bounds (`CALL_SECONDS_BUCKETS`, or `ORIGIN_SECONDS_BUCKETS`), then one for +Inf. */
  buckets: number[];
  sumSeconds: number;
  count: number;
}

/** Requests decided by at least one rule: admitted or denied, by how they were answered. */
export type RequestCounts = Record<"allowed" | "denied", Record<AnsweredBy, number>>;

/** Counts of requests, and of decisions per rule, and the latency of object calls; with the origin's answers once the proxy sent it any. */
export interface Tally {
  requests: RequestCounts;
  rules: Record<string, RuleTally>;
  objectCalls: Histogram;
  /** Only the shipped Worker's proxy counts these; absent until it has. */
  origin?: OriginTally;
}

export function emptyDecisions(): Record<Outcome, Record<AnsweredBy, number>> {
  const byOutcome = {} as Record<Outcome, Record<AnsweredBy, number>>;
  for (const outcome of OUTCOMES) byOutcome[outcome] = { object: 0, lease: 0, cached_denial: 0 };
  return byOutcome;
}

export function emptyHistogram(bounds: readonly number[] = CALL_SECONDS_BUCKETS): Histogram {
  return { buckets: new Array(bounds.length + 1).fill(0), sumSeconds: 0, count: 0 };
}

export function emptyOrigin(): OriginTally {
  const answers = {} as Record<OriginAnswer, number>;
  for (const answer of ORIGIN_ANSWERS) answers[answer] = 0;
  return { answers, latency: emptyHistogram(ORIGIN_SECONDS_BUCKETS) };
}

/** Counts one observation of `seconds` in a histogram of `bounds`. */
export function observe(histogram: Histogram, seconds: number, bounds: readonly number[] = CALL_SECONDS_BUCKETS): void {
  const bucket = bounds.findIndex((bound) => seconds <= bound);
  const index = bucket < 0 ? bounds.length : bucket;
  histogram.buckets[index] = (histogram.buckets[index] ?? 0) + 1;
  histogram.sumSeconds += seconds;
  histogram.count++;
}

/** Adds histogram `batch` into `total` (of the same bounds), in place. */
function addHistogram(total: Histogram, batch: Histogram | undefined): void {
  (batch?.buckets ?? []).slice(0, total.buckets.length).forEach((count, index) => {
    total.buckets[index] = (total.buckets[index] ?? 0) + count;
  });
  total.sumSeconds += batch?.sumSeconds ?? 0;
  total.count += batch?.count ?? 0;
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
  return tally.objectCalls.count === 0 && Object.keys(tally.rules).length === 0 && tally.origin === undefined;
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
  addHistogram(total.objectCalls, batch.objectCalls);
  if (batch.origin) {
    total.origin ??= emptyOrigin();
    for (const answer of ORIGIN_ANSWERS) total.origin.answers[answer] += batch.origin.answers?.[answer] ?? 0;
    addHistogram(total.origin.latency, batch.origin.latency);
  }
}

/**
 * The latency below which a share `q` of a histogram's calls fall, interpolated linearly within its bucket as
 * Prometheus's `histogram_quantile` does; undefined without calls. Beyond the last finite bound it answers that bound.
 */
export function histogramQuantile(histogram: Histogram, q: number, bounds: readonly number[] = CALL_SECONDS_BUCKETS): number | undefined {
  if (histogram.count === 0) return undefined;
  const rank = q * histogram.count;
  let below = 0;
  for (let index = 0; index < histogram.buckets.length; index++) {
    const count = histogram.buckets[index] ?? 0;
    if (below + count >= rank && count > 0) {
      const upper = bounds[index];
      if (upper === undefined) return bounds[bounds.length - 1];
      const lower = index === 0 ? 0 : (bounds[index - 1] as number);
      return lower + (upper - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return bounds[bounds.length - 1];
}
