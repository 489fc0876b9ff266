import type { Context, MiddlewareHandler, Next } from "hono";
import { type Problem, problemBody, problemHeaders, problemResponse, QUOTA_EXCEEDED_TYPE } from "../http/problem.ts";
import { formatRateLimitHeaders, retryAfterSeconds, violatedRules } from "../http/rate-limit-headers.ts";
import { type Identification, identifyKnownRequest, identifyRequest } from "../identity/identify.ts";
import type { Decision } from "../object/protocol.ts";
import type { RateLimiter } from "../object/rate-limiter.ts";
import { decideRequest } from "../object-client/decide-request.ts";
import { type AccessList, isListed, parseAccessList } from "../policy/access-list.ts";
import { matchingRules } from "../policy/route-pattern.ts";
import { loadPolicy, type Policy, PolicyError, parsePolicy, type Rule } from "../policy/schema.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { executionContextOf } from "../runtime/execution-context.ts";
import {
  agedDecision,
  type CachedDenial,
  cacheableWaitMs,
  type DenialCache,
  isolateDenialCache,
  type RenderedDenial,
  ruleNamesOf,
} from "./denials.ts";

/** Options of the `rateLimit()` middleware. */
export interface RateLimitOptions {
  /**
   * The policy, as an object or a JSON string; validated once.
   * @default the `RATE_LIMIT_POLICY` binding of the Worker's environment
   */
  policy?: unknown;
  /**
   * Name of the Durable Object namespace binding of the `RateLimiter` class.
   * @default "RATE_LIMITER"
   */
  binding?: string;
  /**
   * Whether repeated denials are answered from the isolate's memory until they expire
   * (at most 10,000 remembered, least recently used first out).
   * @default true
   */
  cacheDenials?: boolean;
  /** The Worker's clock for cached denials. Only tests set it. */
  clock?: Clock;
}

/** Context variables the middleware sets for later handlers. */
export interface RateLimitVariables {
  /** The decision that admitted this request; absent when no rule applied or the client is allow-listed. */
  rateLimit: Decision | undefined;
}

/** A validated policy with what every request needs from it worked out once. */
interface PreparedPolicy {
  policy: Policy;
  allow: AccessList;
  deny: AccessList;
  /** Whether either list has IP ranges, so that the client's address must be read. */
  listsAddresses: boolean;
  /** Whether no rule has a `match`, so that every rule applies to every request. */
  rulesAlwaysApply: boolean;
  /** Every rule of the policy, for requests that all of them apply to. */
  allRules: RuleSet;
  /** The other sets of rules requests have matched, by their names: one object per set (at most 256 kept). */
  matchedSets: Map<string, RuleSet>;
}

/**
 * The rules that apply to a request, and their names (`ruleNamesOf`), which key the denial
 * cache. The same set is the same object, so what is worked out per rule set is reused.
 */
interface RuleSet {
  rules: readonly Rule[];
  names: string;
}

const NO_RULES: RuleSet = { rules: [], names: "" };
const MAX_MATCHED_SETS = 256;

const prepared = new WeakMap<Policy, PreparedPolicy>();

/** The policy with its access lists parsed, once per policy (`loadPolicy` already returns one object per value). */
function prepare(policy: Policy): PreparedPolicy {
  let ready = prepared.get(policy);
  if (!ready) {
    const allow = parseAccessList(policy.allow);
    const deny = parseAccessList(policy.deny);
    const listsAddresses = allow.ranges.length > 0 || deny.ranges.length > 0;
    const rulesAlwaysApply = policy.rules.every((rule) => rule.match === undefined);
    const allRules = { rules: policy.rules, names: ruleNamesOf(policy.rules) };
    ready = { policy, allow, deny, listsAddresses, rulesAlwaysApply, allRules, matchedSets: new Map() };
    prepared.set(policy, ready);
  }
  return ready;
}

/** The rules that apply to a request: all of them (and the request unread) when no rule has a `match`. */
function applicableRules(lists: PreparedPolicy, request: { method: string; path: string }): RuleSet {
  if (lists.rulesAlwaysApply) return lists.allRules;
  const rules = matchingRules(lists.policy, request.method, request.path);
  if (rules.length === lists.policy.rules.length) return lists.allRules;
  const names = ruleNamesOf(rules);
  let set = lists.matchedSets.get(names);
  if (!set) {
    set = { rules, names };
    if (lists.matchedSets.size < MAX_MATCHED_SETS) lists.matchedSets.set(names, set);
  }
  return set;
}

function isNamespace(value: unknown): value is Namespace {
  return typeof value === "object" && value !== null && "getByName" in value;
}

/** What is wrong with the environment's configuration: the detail of the 500, and the binding when it is missing. */
interface ConfigurationProblem {
  detail: string;
  missingBinding?: string;
}

function configurationProblem(detail: string): Response {
  return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail });
}

/**
 * Rate-limits every request through the client's own Durable Object. Admitted
 * requests continue to the next handler; denied ones get 429 problem+json. Both
 * carry the RateLimit and RateLimit-Policy headers.
 */
export function rateLimit(options: RateLimitOptions = {}): RateLimitMiddleware {
  const bindingName = options.binding ?? "RATE_LIMITER";
  const fixedPolicy = options.policy === undefined ? undefined : prepare(parsePolicy(options.policy));
  const denials: DenialCache | undefined = options.cacheDenials === false ? undefined : isolateDenialCache;
  const clock = options.clock ?? systemClock;

  /**
   * Everything the middleware does once it knows the client. Answered in the same turn
   * when no call to the object is needed (a bad identity, a listed client, no rule, a
   * repeated denial), so that a denied flood costs no more than it must.
   */
  function limitClient(
    c: LimitedContext,
    next: Next,
    lists: PreparedPolicy,
    namespace: Namespace,
    identity: Identification,
  ): Response | Promise<Response | undefined> {
    if ("problem" in identity) {
      return problemResponse({ status: 400, title: "No usable client identity", detail: identity.problem });
    }
    const { clientId } = identity;
    const ruleSet = clientRules(lists, clientId, c.req.raw.headers, c.req);
    if (ruleSet === undefined) {
      return problemResponse({ status: 403, title: "Forbidden", detail: "This client is not allowed to use this API." });
    }
    const { rules, names: ruleNames } = ruleSet;
    if (rules.length === 0) {
      c.set("rateLimit", undefined);
      return next().then(() => undefined);
    }

    // A repeated denial within its retry time is answered from memory: the object would say the same.
    const { policy } = lists;
    const nowMs = clock.nowMs();
    const cached = denials?.get(clientId, ruleNames, nowMs);
    if (cached) return answerFromCache(cached, clientId, nowMs, policy);
    return decideAndAnswer(c, next, { namespace, clientId, rules, policy, ruleNames, nowMs });
  }

  /**
   * A cached denial of this request, rendered as the middleware would answer it; undefined whenever the
   * middleware must see the request (no denial cached, a request `bypass` picks out, a bad configuration
   * or identity, a key not hashed yet, a listed client, a HEAD request, which Hono answers as a GET
   * without its body).
   */
  function repeatedDenial(request: Request, env: unknown, app: RoutedApp, bypass: FrontOptions["bypass"]): Response | undefined {
    if (denials === undefined || denials.size === 0 || request.method === "HEAD") return undefined;
    const path = app.getPath(request, { env });
    if (bypass?.(request, path, env)) return undefined;
    const lists = configurationOf((env ?? {}) as Record<string, unknown>);
    if ("detail" in lists) return undefined;
    const identity = identifyKnownRequest(request.headers, lists.policy.identity);
    if (identity === undefined || "problem" in identity) return undefined;
    const { clientId } = identity;
    const ruleSet = clientRules(lists, clientId, request.headers, { method: request.method, path });
    if (ruleSet === undefined || ruleSet.rules.length === 0) return undefined;
    const nowMs = clock.nowMs();
    const cached = denials.get(clientId, ruleSet.names, nowMs);
    return cached && answerFromCache(cached, clientId, nowMs, lists.policy);
  }

  /**
   * The environment's prepared policy, its namespace checked; otherwise what the middleware answers 500
   * with (an object only then, so that a request allocates nothing for it).
   */
  function configurationOf(env: Record<string, unknown>): PreparedPolicy | ConfigurationProblem {
    let lists: PreparedPolicy;
    try {
      lists = fixedPolicy ?? prepare(loadPolicy(env.RATE_LIMIT_POLICY));
    } catch (error) {
      if (error instanceof PolicyError) return { detail: error.message };
      throw error;
    }
    if (!isNamespace(env[bindingName])) {
      return { detail: `the Durable Object binding ${bindingName} is not configured`, missingBinding: bindingName };
    }
    return lists;
  }

  /** Asks the client's object, answers a denial (and remembers it) or passes the request on with the headers. */
  async function decideAndAnswer(c: LimitedContext, next: Next, request: DecisionRequest): Promise<Response | undefined> {
    const { namespace, clientId, rules, policy, ruleNames, nowMs } = request;
    const decision = await decideRequest({
      namespace,
      clientId,
      rules,
      policy,
      waitUntil: (promise) => executionContextOf(c)?.waitUntil(promise),
    });
    if (isLogged(decision, policy.logDecisions)) console.log(decisionLogLine(clientId, decision, false));
    const headers = formatRateLimitHeaders(decision, policy);
    if (!decision.allowed) {
      // Timed from before the call: the object decided after `nowMs`, so the denial holds at least this long.
      denials?.set(clientId, ruleNames, decision, nowMs, cacheableWaitMs(decision));
      return denied(decision, headers);
    }

    c.set("rateLimit", decision);
    await next();
    const responseHeaders = c.res.headers;
    for (const name in headers) responseHeaders.set(name, headers[name] as string);
    return undefined;
  }

  // Not an async function: a repeated denial is answered without one's allocations (see bench/README.md).
  const middleware: MiddlewareHandler<{ Variables: RateLimitVariables }> = function rateLimitMiddleware(c, next) {
    const env = (c.env ?? {}) as Record<string, unknown>;
    const lists = configurationOf(env);
    if ("detail" in lists) {
      if (lists.missingBinding) console.error(JSON.stringify({ event: "binding-missing", binding: lists.missingBinding }));
      return Promise.resolve(configurationProblem(lists.detail));
    }
    const namespace = env[bindingName] as Namespace;

    const identifying = identifyRequest(c.req.raw.headers, lists.policy.identity);
    if (identifying instanceof Promise) return identifying.then((identity) => limitClient(c, next, lists, namespace, identity));
    const answer = limitClient(c, next, lists, namespace, identifying);
    return answer instanceof Response ? Promise.resolve(answer) : answer;
  };

  return Object.assign(middleware, {
    front<App extends RoutedApp>(app: App, frontOptions: FrontOptions = {}): Front<App> {
      const { bypass } = frontOptions;
      const fetch: App["fetch"] = (request, env, ctx) => repeatedDenial(request, env, app, bypass) ?? app.fetch(request, env, ctx);
      return {
        fetch,
        request(input, init, env, ctx) {
          const url = input instanceof Request || /^https?:\/\//.test(input) ? input : new URL(input, "http://localhost");
          return fetch(new Request(url, init), env, ctx);
        },
      };
    },
  });
}

/** The `rateLimit()` middleware, and what puts it in front of a whole app. */
export interface RateLimitMiddleware extends MiddlewareHandler<{ Variables: RateLimitVariables }> {
  /**
   * A Worker's handler for `app` that answers a client's repeated denial before `app` routes the request,
   * from the same cache and with the same response as the middleware, and hands every other request to
   * `app.fetch`. Routing is most of what a cached denial costs inside Hono (see bench/README.md). Use it
   * only when every request of `app` passes this middleware before anything else answers or adds headers
   * (`app.use("*", limiter)` first), apart from those `bypass` picks out.
   */
  front<App extends RoutedApp>(app: App, options?: FrontOptions): Front<App>;
}

/** Options of `front()`. */
export interface FrontOptions {
  /** Requests `app` does not rate-limit (say, an admin route before the middleware), by request and routed path. */
  bypass?: (request: Request, path: string, env: unknown) => boolean;
}

/** What `front()` needs of an app: a Hono app's `fetch`, and its `getPath`, so that rules match the path the middleware sees. */
export interface RoutedApp {
  fetch(request: Request, env?: unknown, ctx?: ExecutionContext): Response | Promise<Response>;
  getPath(request: Request, options?: { env?: unknown }): string;
}

/** A Worker's handler with the limiter in front of an app: `fetch`, and `request` for tests, as a Hono app has them. */
export interface Front<App extends RoutedApp> {
  fetch: App["fetch"];
  request(
    input: string | Request,
    init?: RequestInit,
    env?: Parameters<App["fetch"]>[1],
    ctx?: ExecutionContext,
  ): Response | Promise<Response>;
}

/**
 * The rules that apply to an identified client's request: none for an allow-listed client,
 * undefined for a deny-listed one. The address is read only when a list has IP ranges.
 */
function clientRules(
  lists: PreparedPolicy,
  clientId: string,
  headers: Headers,
  request: { method: string; path: string },
): RuleSet | undefined {
  const ip = lists.listsAddresses ? headers.get("cf-connecting-ip") : null;
  if (isListed(lists.deny, clientId, ip)) return undefined;
  return isListed(lists.allow, clientId, ip) ? NO_RULES : applicableRules(lists, request);
}

type LimitedContext = Context<{ Variables: RateLimitVariables }>;
type Namespace = DurableObjectNamespace<RateLimiter>;

/** What a request that needs its object's decision carries to it. */
interface DecisionRequest {
  namespace: Namespace;
  clientId: string;
  rules: readonly Rule[];
  policy: Policy;
  /** `ruleNamesOf(rules)`, the denial cache's key with the client id. */
  ruleNames: string;
  /** When the request was screened, before the call: a denial is cached from here. */
  nowMs: number;
}

/** Whether a decision gets a log line under the policy's `logDecisions`. */
function isLogged(decision: Decision, logDecisions: Policy["logDecisions"]): boolean {
  if (logDecisions === "all") return true;
  if (logDecisions === "none") return false;
  return !decision.allowed || decision.degraded === true || decision.rules.some((rule) => rule.mode === "shadow" && !rule.allowed);
}

/**
 * One JSON line per decision. The client id never holds a raw key (keys are
 * hashed into it); shadow rules that would have denied are listed on their own.
 */
function decisionLogLine(clientId: string, decision: Decision, cached: boolean): string {
  const shadowDenied = decision.rules.filter((rule) => rule.mode === "shadow" && !rule.allowed).map((rule) => rule.name);
  return JSON.stringify({
    event: "decision",
    clientId,
    allowed: decision.allowed,
    degraded: decision.degraded ?? false,
    ...(cached ? { cached } : {}),
    rules: decision.rules.map((rule) => ({ name: rule.name, allowed: rule.allowed, remaining: rule.remaining })),
    ...(shadowDenied.length > 0 ? { shadowDenied } : {}),
  });
}

/**
 * Answers a repeated denial from the cache. A flood repeats it thousands of times a
 * second, so the response is rendered once per change of its header values (whole
 * seconds), and the repeats are logged as one line per second with their count.
 */
function answerFromCache(cached: CachedDenial, clientId: string, nowMs: number, policy: Policy): Response {
  let rendered = cached.rendered;
  if (rendered !== undefined && nowMs >= rendered.fromMs && nowMs < rendered.untilMs) {
    rendered.repeats++;
    return new Response(rendered.body, rendered.init);
  }
  const logged = policy.logDecisions !== "none";
  if (logged && rendered && rendered.repeats > 0) console.log(repeatsLogLine(rendered));
  const decision = agedDecision(cached.decision, nowMs - cached.cachedAtMs);
  rendered = { ...sameHeadersSpan(cached, nowMs), ...renderDenial(clientId, decision, formatRateLimitHeaders(decision, policy)) };
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

function repeatsLogLine(rendered: RenderedDenial): string {
  return `${rendered.logLine.slice(0, -1)},"repeats":${rendered.repeats}}`;
}

/** A repeated denial's response and log line, to be reused while its header values stay the same. */
function renderDenial(clientId: string, decision: Decision, headers: Record<string, string>): Omit<RenderedDenial, "fromMs" | "untilMs"> {
  const problem = deniedProblem(decision);
  return {
    body: problemBody(problem),
    init: { status: problem.status, headers: problemHeaders(headers) },
    logLine: decisionLogLine(clientId, decision, true),
    repeats: 0,
  };
}

function denied(decision: Decision, headers: Record<string, string>): Response {
  return problemResponse(deniedProblem(decision), headers);
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
