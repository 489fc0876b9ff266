import type { Decision, RuleVerdict } from "../object/protocol.ts";
import {
  type AnsweredBy,
  CALL_SECONDS_BUCKETS,
  type DeniedClient,
  emptyDecisions,
  emptyHistogram,
  type Histogram,
  type Outcome,
  type Tally,
  TOP_DENIED_CAPACITY,
} from "./tally.ts";

/** An allowed verdict with less than this share of its limit left counts as near the limit, as Envoy's `near_limit`. */
const NEAR_LIMIT_SHARE = 0.2;

/** One rule's counts: per outcome and way of answering, how many were near the limit, and its most denied clients. */
export interface RuleCounts {
  decisions: Record<Outcome, Record<AnsweredBy, number>>;
  nearLimit: number;
  topDenied: TopK;
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

  /** The items kept as denied clients, most denied first. */
  topDenied(): DeniedClient[] {
    return this.top().map(({ item, count }) => ({ client: item, count }));
  }
}

/** The outcome of one rule's verdict. */
export function outcomeOf(verdict: RuleVerdict): Outcome {
  if (verdict.degraded) return verdict.allowed ? "degraded_allowed" : "degraded_denied";
  if (verdict.allowed) return "allowed";
  return verdict.mode === "shadow" ? "shadow_denied" : "denied";
}

/**
 * What this isolate's limiter decided, counted in memory: no I/O per request (`metrics-flusher.ts` sends what it
 * counted, every few seconds). Per rule: decisions by outcome and by how they were answered, near-limit admissions, and the most denied
 * clients (as the logs show them: key hashes, never keys). Plus a histogram of object-call latency.
 */
export class DecisionCounters {
  private byRule = new Map<string, RuleCounts>();
  objectCalls: Histogram = emptyHistogram();

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

  /** Each rule's counts since the last `drain()`. */
  rules(): ReadonlyMap<string, RuleCounts> {
    return this.byRule;
  }

  /** Everything counted since the last drain, as plain data; the counters start again from zero. */
  drain(): Tally {
    const tally: Tally = { rules: {}, objectCalls: this.objectCalls };
    for (const [name, counts] of this.byRule) {
      tally.rules[name] = { decisions: counts.decisions, nearLimit: counts.nearLimit, topDenied: counts.topDenied.topDenied() };
    }
    this.byRule = new Map();
    this.objectCalls = emptyHistogram();
    return tally;
  }
}

/** This isolate's counters, shared by every `rateLimit()` in it. */
export const isolateCounters = new DecisionCounters();
