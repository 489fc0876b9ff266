import type { Decision, RuleVerdict } from "../object/protocol.ts";
import {
  type AnsweredBy,
  emptyDecisions,
  emptyHistogram,
  emptyOrigin,
  emptyRequests,
  type Histogram,
  ORIGIN_SECONDS_BUCKETS,
  type OriginAnswer,
  type OriginTally,
  type Outcome,
  observe,
  type RequestCounts,
  type Tally,
  TOP_DENIED_CAPACITY,
} from "./tally.ts";
import { TopK } from "./top-k.ts";

/** An admission that leaves less than this share of a rule's limit counts as near the limit, as Envoy's `near_limit`. */
const NEAR_LIMIT_SHARE = 0.2;

/**
 * Keys an isolate remembers between two flushes, per list, the latest-ending kept: candidates for the admin API's
 * lists of what the limiter holds (`GET {prefix}/blocks`, `GET {prefix}/holdings`), which ask each one's object
 * whether it still holds it.
 */
export const MAX_KEY_ENDS = 100;

/**
 * How long at least a leasing key is listed after a lease's grant: two flush intervals, so that the metrics objects
 * still hold it when the flush that carries it arrives (a lease itself lasts about a second, renewed while busy).
 */
export const LEASES_LISTED_MS = 20_000;

/** The lists of keys: blocked, holding a lease this isolate was granted, or with a hold awaiting its settlement. */
export type KeyList = "blocks" | "leases" | "holds";

export const KEY_LISTS: readonly KeyList[] = ["blocks", "leases", "holds"];

/** A key seen blocked, leasing or holding: its object's name, and when that ends (epoch ms), as far as the isolate knows. */
export interface KeyEnd {
  object: string;
  untilMs: number;
}

/** Each list's keys, latest-ending first. */
export type KeyLists = Record<KeyList, KeyEnd[]>;

/**
 * Keeps the `limit` latest-ending of `candidates` not ended at `nowMs`, one per object (its latest end), latest first.
 * How isolates, metrics objects and the admin API's read all bound a list of keys.
 */
export function latestEnds(candidates: Iterable<KeyEnd>, nowMs: number, limit = MAX_KEY_ENDS): KeyEnd[] {
  const untilByObject = new Map<string, number>();
  for (const { object, untilMs } of candidates) {
    if (untilMs > nowMs && untilMs > (untilByObject.get(object) ?? 0)) untilByObject.set(object, untilMs);
  }
  return [...untilByObject]
    .map(([object, untilMs]) => ({ object, untilMs }))
    .sort((a, b) => b.untilMs - a.untilMs || (a.object < b.object ? -1 : 1))
    .slice(0, limit);
}

function emptyEnds(): Record<KeyList, Map<string, number>> {
  return { blocks: new Map(), leases: new Map(), holds: new Map() };
}

/** One rule's counts as they grow: a `RuleTally` whose top denied clients are still a sketch. */
interface RuleCounts {
  decisions: Record<Outcome, Record<AnsweredBy, number>>;
  nearLimit: number;
  topDenied: TopK;
}

/** The outcome of one rule's verdict. */
export function outcomeOf(verdict: RuleVerdict): Outcome {
  if (verdict.degraded) return verdict.allowed ? "degraded_allowed" : "degraded_denied";
  if (verdict.allowed) return "allowed";
  return verdict.mode === "shadow" ? "shadow_denied" : "denied";
}

/**
 * What this isolate's limiter decided, counted in memory: no I/O per request (`metrics-flusher.ts` sends what it
 * counted every few seconds). Requests by outcome and how they were answered; per rule, the same per verdict,
 * near-limit admissions and the most denied clients (as the logs show them: key hashes, never keys); and a histogram
 * of object-call latency.
 */
export class DecisionCounters {
  private requests: RequestCounts = emptyRequests();
  private byRule = new Map<string, RuleCounts>();
  private objectCalls: Histogram = emptyHistogram();
  private origin: OriginTally | undefined;
  private ends = emptyEnds();

  /**
   * Counts one decision on a client's request. An admitted request counts under each of its rules' outcomes; a
   * denied one, charged to no rule, only under the rules that denied it.
   */
  record(decision: Decision, answeredBy: AnsweredBy, clientId: string): void {
    this.requests[decision.allowed ? "allowed" : "denied"][answeredBy]++;
    for (const verdict of decision.rules) {
      if (!decision.allowed && (verdict.allowed || verdict.mode === "shadow")) continue;
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
    observe(this.objectCalls, seconds);
  }

  /** Counts how the proxy's request to the origin was answered, and when the origin answered, how long its headers took. */
  recordOrigin(answer: OriginAnswer, seconds?: number): void {
    this.origin ??= emptyOrigin();
    this.origin.answers[answer]++;
    if (seconds !== undefined) observe(this.origin.latency, seconds, ORIGIN_SECONDS_BUCKETS);
  }

  /**
   * Remembers that the key of `object` is in `list` until `untilMs`: blocked (a denial with a blocked rule, or an
   * operator's block), holding a lease, or holding a charge until its settlement. Bounded: past `MAX_KEY_ENDS` in a
   * list, the earliest-ending are forgotten.
   */
  recordEnd(list: KeyList, object: string, untilMs: number): void {
    const ends = this.ends[list];
    if (untilMs <= (ends.get(object) ?? 0)) return;
    ends.set(object, untilMs);
    if (ends.size > 2 * MAX_KEY_ENDS) {
      this.ends[list] = new Map(latestEnds(endsOf(ends), 0).map((end) => [end.object, end.untilMs]));
    }
  }

  /** The keys seen since the last drain, each list latest-ending first; forgotten here. */
  drainEnds(): KeyLists {
    const drained = { blocks: [], leases: [], holds: [] } as KeyLists;
    for (const list of KEY_LISTS) drained[list] = latestEnds(endsOf(this.ends[list]), 0);
    this.ends = emptyEnds();
    return drained;
  }

  /** Everything counted since the last drain, as plain data; the counters start again from zero. */
  drain(): Tally {
    const tally: Tally = {
      requests: this.requests,
      rules: {},
      objectCalls: this.objectCalls,
      ...(this.origin ? { origin: this.origin } : {}),
    };
    for (const [name, counts] of this.byRule) {
      const topDenied = counts.topDenied.top().map(({ item, count }) => ({ client: item, count }));
      tally.rules[name] = { decisions: counts.decisions, nearLimit: counts.nearLimit, topDenied };
    }
    this.requests = emptyRequests();
    this.byRule = new Map();
    this.objectCalls = emptyHistogram();
    this.origin = undefined;
    return tally;
  }
}

function endsOf(ends: Map<string, number>): KeyEnd[] {
  return [...ends].map(([object, untilMs]) => ({ object, untilMs }));
}

/** This isolate's counters, shared by every `rateLimit()` in it. */
export const isolateCounters = new DecisionCounters();

/** What answered a decision just made: this isolate's leases, its memory of a shared object's denial, or an object. */
export function answeredByOf(decision: Decision): AnsweredBy {
  return decision.leased ? "lease" : decision.cached ? "cached_denial" : "object";
}
