import type { Decision, RuleVerdict } from "../object/protocol.ts";

/** How a decision was answered: by an object call, from this isolate's leases, or from its cache of denials. */
export type AnsweredBy = "object" | "lease" | "cached_denial";

/** What one rule's verdict was, as Envoy's rate limit service counts them, with the limiter's degraded cases. */
export type Outcome = "allowed" | "denied" | "shadow_denied" | "degraded_allowed" | "degraded_denied";

const OUTCOMES: readonly Outcome[] = ["allowed", "denied", "shadow_denied", "degraded_allowed", "degraded_denied"];

/** Upper bounds, in seconds, of the object-call latency histogram's buckets (Prometheus `le`), then +Inf. */
export const CALL_SECONDS_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** An allowed verdict with less than this share of its limit left counts as near the limit, as Envoy's `near_limit`. */
const NEAR_LIMIT_SHARE = 0.2;

/** Clients followed per rule in its top denied clients. */
const TOP_DENIED_CAPACITY = 20;

/** One rule's counts: per outcome and way of answering, how many were near the limit, and its most denied clients. */
export interface RuleCounts {
  decisions: Record<Outcome, Record<AnsweredBy, number>>;
  nearLimit: number;
  topDenied: TopK;
}

/** A latency histogram, as Prometheus keeps one: a count per bucket (cumulative when read), the sum and the count. */
export interface Histogram {
  /** One count per bucket of `CALL_SECONDS_BUCKETS`, then one for +Inf; not cumulative. */
  buckets: number[];
  sumSeconds: number;
  count: number;
}

/**
 * The most frequent items of a stream in bounded memory: the space-saving algorithm (Metwally et al., 2005). Each
 * count is at most its item's true count plus the smallest count when the item came in; items that occur more often
 * than 1/capacity of the stream are always among those kept.
 */
export class TopK {
  private readonly counts = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  add(item: string): void {
    const count = this.counts.get(item);
    if (count !== undefined) {
      this.counts.set(item, count + 1);
      return;
    }
    if (this.counts.size < this.capacity) {
      this.counts.set(item, 1);
      return;
    }
    let smallest: string | undefined;
    let smallestCount = Number.POSITIVE_INFINITY;
    for (const [kept, keptCount] of this.counts) {
      if (keptCount < smallestCount) {
        smallest = kept;
        smallestCount = keptCount;
      }
    }
    this.counts.delete(smallest as string);
    this.counts.set(item, smallestCount + 1);
  }

  /** The items kept, most frequent first. */
  top(): Array<{ item: string; count: number }> {
    return [...this.counts].map(([item, count]) => ({ item, count })).sort((a, b) => b.count - a.count);
  }
}

function emptyDecisions(): Record<Outcome, Record<AnsweredBy, number>> {
  const byOutcome = {} as Record<Outcome, Record<AnsweredBy, number>>;
  for (const outcome of OUTCOMES) byOutcome[outcome] = { object: 0, lease: 0, cached_denial: 0 };
  return byOutcome;
}

/** The outcome of one rule's verdict. */
export function outcomeOf(verdict: RuleVerdict): Outcome {
  if (verdict.degraded) return verdict.allowed ? "degraded_allowed" : "degraded_denied";
  if (verdict.allowed) return "allowed";
  return verdict.mode === "shadow" ? "shadow_denied" : "denied";
}

/**
 * What this isolate's limiter decided, counted in memory: no I/O per request (issue 16's metrics are flushed from
 * here). Per rule: decisions by outcome and by how they were answered, near-limit admissions, and the most denied
 * clients (as the logs show them: key hashes, never keys). Plus a histogram of object-call latency.
 */
export class DecisionCounters {
  private readonly byRule = new Map<string, RuleCounts>();
  readonly objectCalls: Histogram = { buckets: new Array(CALL_SECONDS_BUCKETS.length + 1).fill(0), sumSeconds: 0, count: 0 };

  /** Counts one decision on a client's request, each of its rules under its own outcome. */
  record(decision: Decision, answeredBy: AnsweredBy, clientId: string): void {
    for (const verdict of decision.rules) {
      let counts = this.byRule.get(verdict.name);
      if (!counts) {
        counts = { decisions: emptyDecisions(), nearLimit: 0, topDenied: new TopK(TOP_DENIED_CAPACITY) };
        this.byRule.set(verdict.name, counts);
      }
      const outcome = outcomeOf(verdict);
      counts.decisions[outcome][answeredBy]++;
      if (outcome === "allowed" && verdict.remaining < verdict.limit * NEAR_LIMIT_SHARE) counts.nearLimit++;
      else if (outcome === "denied" || outcome === "shadow_denied") counts.topDenied.add(clientId);
    }
  }

  /** Counts one call to an object that took `seconds`. */
  recordObjectCall(seconds: number): void {
    const bucket = CALL_SECONDS_BUCKETS.findIndex((bound) => seconds <= bound);
    const index = bucket < 0 ? CALL_SECONDS_BUCKETS.length : bucket;
    this.objectCalls.buckets[index] = (this.objectCalls.buckets[index] ?? 0) + 1;
    this.objectCalls.sumSeconds += seconds;
    this.objectCalls.count++;
  }

  /** Each rule's counts so far. */
  rules(): ReadonlyMap<string, RuleCounts> {
    return this.byRule;
  }
}

/** This isolate's counters, shared by every `rateLimit()` in it. */
export const isolateCounters = new DecisionCounters();
