import { type Problem, problemBody, problemHeaders, problemResponse, QUOTA_EXCEEDED_TYPE } from "../http/problem.ts";
import { formatRateLimitHeaders, retryAfterSeconds, violatedRules } from "../http/rate-limit-headers.ts";
import type { DecisionCounters } from "../metrics/decision-counters.ts";
import type { Decision } from "../object/protocol.ts";
import { agedDecision } from "../object-client/denial-wait.ts";
import type { Policy } from "../policy/types.ts";
import { RecentMap } from "../runtime/recent-map.ts";
import { decisionLogLine, repeatsLogLine } from "./decision-log.ts";

/** A denial the Worker may repeat without asking the object, until `untilMs`. */
interface CachedDenial {
  decision: Decision;
  cachedAtMs: number;
  untilMs: number;
  /** The last response rendered from it, reused while its header values stay the same. */
  rendered?: RenderedDenial;
}

/**
 * What a repeated denial is answered with: built once per change of its header values, not per request
 * (bench/README.md, "The denied flood: its floor, and what `front()` adds").
 */
interface RenderedDenial {
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
 * Repeated denials answered from the Worker's memory (docs/architecture.md, invariant 5). A denial holds
 * until its violated rules' exact `retryAfterMs` has passed — no tokens can appear
 * before then — so answering it again from here is exact. Kept per client and per
 * set of rules that applied (`RuleSet.key`); bounded by clients, least recently used
 * first out; one per isolate. An admin reset or override clears the client's entries
 * in the isolate that made it; another isolate's entry holds until it expires.
 */
export class DenialCache {
  /** Object name (a client id, under the limiter's prefix if any) → the rule set's key → denial. Keyed by the id so a lookup builds no string. */
  private readonly clients: RecentMap<Map<string, CachedDenial>>;

  constructor(maxClients = 10_000) {
    this.clients = new RecentMap(maxClients);
  }

  /**
   * The response to a repeated denial of the client for these rules, if one still holds at `nowMs`.
   * A flood repeats it thousands of times a second, so the response is rendered once per change
   * of its header values (whole seconds), and the repeats are logged as one line per second with their count.
   */
  answer(clientId: string, ruleSetKey: string, nowMs: number, policy: Policy, counters?: DecisionCounters): Response | undefined {
    const cached = this.get(clientId, ruleSetKey, nowMs);
    if (!cached) return undefined;
    counters?.record(cached.decision, "cached_denial", clientId);
    return answerFromCache(cached, clientId, nowMs, policy);
  }

  /** The decision of a repeated denial, as it stands at `nowMs` (its waits shortened), if one still holds; for `limit()`. */
  decision(clientId: string, ruleSetKey: string, nowMs: number, counters?: DecisionCounters): Decision | undefined {
    const cached = this.get(clientId, ruleSetKey, nowMs);
    if (!cached) return undefined;
    counters?.record(cached.decision, "cached_denial", clientId);
    return agedDecision(cached.decision, nowMs - cached.cachedAtMs);
  }

  /** The client's cached denial for these rules if it still holds at `nowMs`. */
  get(clientId: string, ruleSetKey: string, nowMs: number): CachedDenial | undefined {
    const denials = this.clients.get(clientId);
    const entry = denials?.get(ruleSetKey);
    if (!denials || !entry || entry.untilMs > nowMs) return entry;
    denials.delete(ruleSetKey);
    if (denials.size === 0) this.clients.delete(clientId);
    return undefined;
  }

  /** Remembers the client's denial for these rules for `waitMs` (see `cacheableWaitMs` in object-client/denial-wait.ts) from `nowMs`. */
  set(clientId: string, ruleSetKey: string, decision: Decision, nowMs: number, waitMs: number): void {
    if (waitMs <= 0) return;
    let denials = this.clients.get(clientId);
    if (!denials || (denials.size >= MAX_RULE_SETS_PER_CLIENT && !denials.has(ruleSetKey))) {
      denials = new Map();
      this.clients.set(clientId, denials);
    }
    denials.set(ruleSetKey, { decision, cachedAtMs: nowMs, untilMs: nowMs + waitMs });
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

/** The response to a denial the object has just made. */
export function denialResponse(decision: Decision, policy: Policy): Response {
  return problemResponse(deniedProblem(decision), formatRateLimitHeaders(decision, policy));
}

/** Answers a repeated denial from the cache, rendering its response again only when its header values change. */
function answerFromCache(cached: CachedDenial, clientId: string, nowMs: number, policy: Policy): Response {
  let rendered = cached.rendered;
  if (rendered !== undefined && nowMs >= rendered.fromMs && nowMs < rendered.untilMs) {
    rendered.repeats++;
    return new Response(rendered.body, rendered.init);
  }
  const logged = policy.logDecisions !== "none";
  if (logged && rendered && rendered.repeats > 0) console.log(repeatsLogLine(rendered.logLine, rendered.repeats));
  const decision = agedDecision(cached.decision, nowMs - cached.cachedAtMs);
  const problem = deniedProblem(decision);
  rendered = {
    ...sameHeadersSpan(cached, nowMs),
    body: problemBody(problem),
    init: { status: problem.status, headers: problemHeaders(formatRateLimitHeaders(decision, policy)) },
    logLine: decisionLogLine(clientId, decision, true),
    repeats: 0,
  };
  cached.rendered = rendered;
  if (logged) console.log(rendered.logLine);
  return new Response(rendered.body, rendered.init);
}

/**
 * The span around `nowMs` in which a cached denial renders the same headers: its header values
 * count whole seconds since it was cached (`RateLimit`'s t) and, rounded up, until it expires
 * (`Retry-After`), so they hold while both counts do.
 */
function sameHeadersSpan(cached: CachedDenial, nowMs: number): { fromMs: number; untilMs: number } {
  const elapsedSeconds = Math.floor((nowMs - cached.cachedAtMs) / 1000);
  const remainingSeconds = Math.ceil((cached.untilMs - nowMs) / 1000);
  return {
    fromMs: Math.max(cached.cachedAtMs + elapsedSeconds * 1000, cached.untilMs - remainingSeconds * 1000),
    untilMs: Math.min(cached.cachedAtMs + (elapsedSeconds + 1) * 1000, cached.untilMs - (remainingSeconds - 1) * 1000),
  };
}

/** The problem a denial is answered with: 429 over quota, or 503 when a rule set to fail closed could not be decided. */
function deniedProblem(decision: Decision): Problem {
  const violated = violatedRules(decision);
  const failedClosed = violated.filter((rule) => rule.degraded);
  if (failedClosed.length > 0) {
    const names = failedClosed.map((rule) => `"${rule.name}"`).join(", ");
    return {
      status: 503,
      title: "Rate limiter unavailable",
      detail: `The rate limiter could not decide this request, and ${names} ${failedClosed.length === 1 ? "is" : "are"} set to onError: "deny". Retry shortly.`,
      "violated-policies": violated.map((rule) => rule.name),
    };
  }
  const impossible = violated.filter((rule) => rule.reason === "cost-exceeds-capacity");
  const detail =
    impossible.length > 0
      ? `This request costs more than rule ${impossible.map((rule) => `"${rule.name}"`).join(", ")} can ever allow at once.`
      : `Rate limit exceeded for ${violated.map((rule) => `"${rule.name}"`).join(", ")}; retry in ${retryAfterSeconds(decision)} s.`;
  return {
    type: QUOTA_EXCEEDED_TYPE,
    status: 429,
    title: "Request cannot be satisfied as assigned quota has been exceeded",
    detail,
    "violated-policies": violated.map((rule) => rule.name),
  };
}
