import { LRUCache } from "lru-cache";
import type { Decision } from "../object/protocol.ts";

/** A denial the Worker may repeat without asking the object, until `untilMs`. */
export interface CachedDenial {
  decision: Decision;
  cachedAtMs: number;
  untilMs: number;
  /** The last response rendered from it, reused while its header values stay the same. */
  rendered?: RenderedDenial;
}

/** What a repeated denial is answered with: built once per change of its header values, not per request. */
export interface RenderedDenial {
  /** From when until when (exclusive) its header values hold: the same whole seconds since the denial and until it expires. */
  fromMs: number;
  untilMs: number;
  body: string;
  /** Status and headers, one object handed to every Response built from it. */
  init: { status: number; headers: Headers };
  logLine: string;
  /** Requests answered with it after the first, logged as one count when it is replaced. */
  repeats: number;
}

/** At most this many rule sets are remembered per client; beyond it the client's entries start over. */
const MAX_RULE_SETS_PER_CLIENT = 16;

/**
 * Repeated denials answered from the Worker's memory (invariant 5). A denial holds
 * until its violated rules' exact `retryAfterMs` has passed — no tokens can appear
 * before then — so answering it again from here is exact. Kept per client and per
 * set of rules that applied (`ruleNamesOf`); bounded by clients, least recently used
 * first out; one per isolate. An admin reset or override clears the client's entries
 * in the isolate that made it; another isolate's entry holds until it expires.
 */
export class DenialCache {
  /** Client id → the names of the rules that applied → denial. Keyed by the id so a lookup builds no string. */
  private readonly clients: LRUCache<string, Map<string, CachedDenial>>;

  constructor(maxClients = 10_000) {
    this.clients = new LRUCache({ max: maxClients });
  }

  /** The client's cached denial for these rules if it still holds at `nowMs`. */
  get(clientId: string, ruleNames: string, nowMs: number): CachedDenial | undefined {
    const denials = this.clients.get(clientId);
    const entry = denials?.get(ruleNames);
    if (!denials || !entry || entry.untilMs > nowMs) return entry;
    denials.delete(ruleNames);
    if (denials.size === 0) this.clients.delete(clientId);
    return undefined;
  }

  /** Remembers the client's denial for these rules for `waitMs` from `nowMs`. */
  set(clientId: string, ruleNames: string, decision: Decision, nowMs: number, waitMs: number): void {
    if (waitMs <= 0) return;
    let denials = this.clients.get(clientId);
    if (!denials || (denials.size >= MAX_RULE_SETS_PER_CLIENT && !denials.has(ruleNames))) {
      denials = new Map();
      this.clients.set(clientId, denials);
    }
    denials.set(ruleNames, { decision, cachedAtMs: nowMs, untilMs: nowMs + waitMs });
  }

  /** Forgets every denial of one client, for an admin change made through this isolate. */
  forgetClient(clientId: string): void {
    this.clients.delete(clientId);
  }

  /** How many clients have a denial remembered. */
  get size(): number {
    return this.clients.size;
  }
}

/** The isolate's cache: shared by the middleware and the admin API, which clears a client's entries when it changes it. */
export const isolateDenialCache = new DenialCache();

/** The names of the rules that applied to a request, as the cache tells rule sets apart. */
export function ruleNamesOf(rules: readonly { name: string }[]): string {
  return rules.map((rule) => rule.name).join("\n");
}

/** How long a denial holds: until every violated enforcing rule could admit again. 0 when it must not be cached. */
export function cacheableWaitMs(decision: Decision): number {
  if (decision.allowed || decision.degraded) return 0;
  const violated = decision.rules.filter((rule) => rule.mode === "enforce" && !rule.allowed);
  if (violated.length === 0 || violated.some((rule) => rule.degraded)) return 0;
  // Until the latest of them, that rule still denies: its retryAfterMs is never later than it could admit.
  if (violated.some((rule) => rule.retryAfterMs <= 0)) return 0;
  return Math.max(...violated.map((rule) => rule.retryAfterMs));
}

/** A cached decision as it stands `elapsedMs` later: the same verdicts, with the waits shortened. */
export function agedDecision(decision: Decision, elapsedMs: number): Decision {
  const elapsedSeconds = Math.floor(elapsedMs / 1000);
  return {
    ...decision,
    rules: decision.rules.map((rule) => ({
      ...rule,
      retryAfterMs: Math.max(0, rule.retryAfterMs - elapsedMs),
      retryAfterSeconds: rule.allowed ? 0 : Math.max(1, Math.ceil(Math.max(0, rule.retryAfterMs - elapsedMs) / 1000)),
      resetSeconds: Math.max(0, rule.resetSeconds - elapsedSeconds),
    })),
  };
}
