import type { Context, MiddlewareHandler, Next } from "hono";
import { misconfiguredResponse, problemResponse } from "../http/problem.ts";
import { formatRateLimitHeaders } from "../http/rate-limit-headers.ts";
import { type Identification, identifyRequest } from "../identity/identify.ts";
import { type DecisionCounters, isolateCounters } from "../metrics/decision-counters.ts";
import { isolateMetricsFlusher } from "../metrics/metrics-flusher.ts";
import type { Decision } from "../object/protocol.ts";
import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import { decideRequest } from "../object-client/decide-request.ts";
import { objectNameOf } from "../object-client/object-name.ts";
import type { CompiledPolicy, RuleSet } from "../policy/compiled-policy.ts";
import type { Policy } from "../policy/types.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { executionContextOf, waitUntilOf } from "../runtime/execution-context.ts";
import { decisionLogLine, isLogged } from "./decision-log.ts";
import { cacheableWaitMs, type DenialCache, denialResponse, isolateDenialCache } from "./denials.ts";
import { type Front, type FrontOptions, frontOf, type RoutedApp } from "./front.ts";
import { keyHasherOf, limiterConfiguration, logConfigurationProblem } from "./limiter-configuration.ts";

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
   * Keeps this limiter's buckets, cached denials and leases apart from other limiters' on the same namespace: its
   * clients' objects are named `<prefix>/<client id>`, and its global rules' object `<prefix>/global` (Upstash's word
   * for it). Two limiters in one Worker whose policies define a rule of one name with other limits need different
   * prefixes: without, the second is refused with a 500 at its first request, naming the rule and both definitions.
   * Letters, digits, `_`, `-`, `.` and `:`, at most 64.
   * @default none: objects are named by the client id alone, as the shipped Worker and its admin API name them
   */
  prefix?: string;
  /**
   * Whether repeated denials are answered from the isolate's memory until they expire
   * (at most 10,000 remembered, least recently used first out).
   * @default true
   */
  cacheDenials?: boolean;
  /**
   * Whether the isolate counts decisions (per rule, outcome and how each was answered; docs/metrics.md) and sends the
   * counts every 10 s to what the Worker binds: `RATE_LIMIT_METRICS` (the `RateLimitMetrics` class) and
   * `RATE_LIMIT_ANALYTICS` (a Workers Analytics Engine dataset). Neither bound, each flush drops them.
   * @default true
   */
  metrics?: boolean;
  /** The Worker's clock, for cached denials, leases and metrics. Only tests set it. */
  clock?: Clock;
}

/** Context variables the middleware sets for later handlers. */
export interface RateLimitVariables {
  /** The decision that admitted this request; absent when no rule applied or the client is allow-listed. */
  rateLimit: Decision | undefined;
}

// As Hono's own middleware do: `c.get("rateLimit")` is typed in every app that imports the limiter, without generics.
declare module "hono" {
  interface ContextVariableMap extends RateLimitVariables {}
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

type LimitedContext = Context<{ Variables: RateLimitVariables }>;

/** A request `front()` screened and handed on to the app: the client, when, and what screening found. */
interface FrontScreening {
  compiled: CompiledPolicy;
  namespace: RateLimiterNamespace;
  clientId: string;
  screened: RuleSet | "deny-listed";
  nowMs: number;
}

/**
 * Rate-limits every request through the client's own Durable Object. Admitted
 * requests continue to the next handler; denied ones get 429 problem+json. Both
 * carry the RateLimit and RateLimit-Policy headers.
 *
 * One pipeline serves every request: configuration → identity → the rules that apply
 * (`screen`) → a cached denial, or the object's decision → the answer. `front()` runs
 * its first steps before routing and answers only what the cache can.
 */
export function rateLimit(options: RateLimitOptions = {}): RateLimitMiddleware {
  const bindingName = options.binding ?? "RATE_LIMITER";
  const { prefix } = options;
  const configurationOf = limiterConfiguration({ policy: options.policy, binding: bindingName, prefix });
  const denials: DenialCache | undefined = options.cacheDenials === false ? undefined : isolateDenialCache;
  const clock = options.clock ?? systemClock;
  const counters: DecisionCounters | undefined = options.metrics === false ? undefined : isolateCounters;
  const flusher = counters ? isolateMetricsFlusher : undefined;
  const screenedInFront = new WeakMap<Request, FrontScreening>();
  /**
   * The rules that apply to an identified client's request (or "deny-listed"), or the answer to it when
   * the cache has one: a repeated denial within its retry time, which the object would only repeat.
   */
  function screen(
    compiled: CompiledPolicy,
    clientId: string,
    request: Request,
    path: string,
    nowMs: number,
  ): RuleSet | "deny-listed" | Response {
    const ruleSet = compiled.ruleSetFor(clientId, request.headers, request.method, path);
    if (ruleSet === "deny-listed" || ruleSet.rules.length === 0 || denials === undefined) return ruleSet;
    return denials.answer(objectNameOf(prefix, clientId), ruleSet.key, nowMs, compiled.policy, counters) ?? ruleSet;
  }

  /**
   * Everything the middleware does once it knows the client. Answered in the same turn
   * when no call to the object is needed (a bad identity, a listed client, no rule, a
   * repeated denial), so that a denied flood costs no more than it must.
   */
  function limitClient(
    c: LimitedContext,
    next: Next,
    compiled: CompiledPolicy,
    namespace: RateLimiterNamespace,
    identity: Identification,
  ): Response | Promise<Response | undefined> {
    if ("problem" in identity) {
      return problemResponse({ status: 400, title: "No usable client identity", detail: identity.problem });
    }
    const nowMs = clock.nowMs();
    flusher?.flushIfDue(c.env, nowMs, executionContextOf(c));
    const screened = screen(compiled, identity.clientId, c.req.raw, c.req.path, nowMs);
    return limitScreened(c, next, compiled, namespace, identity.clientId, screened, nowMs);
  }

  /** What follows screening: the 403 of a deny-listed client, a cached denial, the next handler, or the object's decision. */
  function limitScreened(
    c: LimitedContext,
    next: Next,
    compiled: CompiledPolicy,
    namespace: RateLimiterNamespace,
    clientId: string,
    screened: RuleSet | "deny-listed" | Response,
    nowMs: number,
  ): Response | Promise<Response | undefined> {
    if (screened === "deny-listed") {
      return problemResponse({ status: 403, title: "Forbidden", detail: "This client is not allowed to use this API." });
    }
    if (screened instanceof Response) return screened;
    if (screened.rules.length === 0) {
      c.set("rateLimit", undefined);
      return next().then(() => undefined);
    }
    return decideAndAnswer(c, next, compiled, namespace, clientId, screened, nowMs);
  }

  /** Asks the client's object (or its lease), answers a denial (and remembers it) or passes the request on with the headers. */
  function decideAndAnswer(
    c: LimitedContext,
    next: Next,
    compiled: CompiledPolicy,
    namespace: RateLimiterNamespace,
    clientId: string,
    ruleSet: RuleSet,
    screenedAtMs: number,
  ): Response | Promise<Response | undefined> {
    const decision = decideRequest({
      namespace,
      prefix,
      clientId,
      ruleSet,
      policy: compiled.policy,
      waitUntil: waitUntilOf(executionContextOf(c)),
      clock,
      counters,
    });
    // A lease's admission comes in the same turn: no promise to wait for.
    return decision instanceof Promise
      ? decision.then((decided) => respond(c, next, compiled.policy, clientId, ruleSet, screenedAtMs, decided))
      : respond(c, next, compiled.policy, clientId, ruleSet, screenedAtMs, decision);
  }

  /** A denial's response (remembered), or the next handler's with the headers. */
  function respond(
    c: LimitedContext,
    next: Next,
    policy: Policy,
    clientId: string,
    ruleSet: RuleSet,
    screenedAtMs: number,
    decision: Decision,
  ): Response | Promise<undefined> {
    // With a prefix, logs and metrics name the client as its object is named, so that they tell the limiters apart.
    const objectName = objectNameOf(prefix, clientId);
    counters?.record(decision, decision.leased ? "lease" : "object", objectName);
    if (isLogged(decision, policy.logDecisions)) console.log(decisionLogLine(objectName, decision, false));
    if (!decision.allowed) {
      // Timed from before the call: the object decided later, so the denial holds at least this long.
      denials?.set(objectName, ruleSet.key, decision, screenedAtMs, cacheableWaitMs(decision));
      return denialResponse(decision, policy);
    }
    c.set("rateLimit", decision);
    return next().then(() => {
      const headers = formatRateLimitHeaders(decision, policy);
      const responseHeaders = c.res.headers;
      for (const name in headers) responseHeaders.set(name, headers[name] as string);
      return undefined;
    });
  }

  // Not an async function: a repeated denial is answered without one's allocations (see bench/README.md).
  const middleware: MiddlewareHandler<{ Variables: RateLimitVariables }> = function rateLimitMiddleware(c, next) {
    // What front() screened needs no second look at the configuration: it read the same env moments ago.
    const fromFront = screenedInFront.get(c.req.raw);
    if (fromFront) {
      screenedInFront.delete(c.req.raw);
      const { compiled, namespace, clientId, screened, nowMs } = fromFront;
      const answer = limitScreened(c, next, compiled, namespace, clientId, screened, nowMs);
      return answer instanceof Response ? Promise.resolve(answer) : answer;
    }
    const env = (c.env ?? {}) as Record<string, unknown>;
    const configuration = configurationOf(env);
    if ("detail" in configuration) {
      logConfigurationProblem(configuration);
      return Promise.resolve(misconfiguredResponse(configuration.detail));
    }
    const keys = keyHasherOf(env);
    if ("detail" in keys) return Promise.resolve(misconfiguredResponse(keys.detail));
    const namespace = env[bindingName] as RateLimiterNamespace;
    const identifying = identifyRequest(c.req.raw.headers, configuration.policy.identity, keys);
    const answer =
      identifying instanceof Promise
        ? identifying.then((identity) => limitClient(c, next, configuration, namespace, identity))
        : limitClient(c, next, configuration, namespace, identifying);
    return answer instanceof Response ? Promise.resolve(answer) : answer;
  };

  return Object.assign(middleware, {
    front<App extends RoutedApp>(app: App, frontOptions: FrontOptions = {}): Front<App> {
      return frontOf(
        app,
        {
          get isEmpty() {
            return denials === undefined || denials.size === 0;
          },
          answer(request, path, env, ctx) {
            const compiled = configurationOf((env ?? {}) as Record<string, unknown>);
            const keys = keyHasherOf((env ?? {}) as Record<string, unknown>);
            if ("detail" in compiled || "detail" in keys) return undefined;
            // A key not hashed yet is left to the middleware, which goes on with the hash started here.
            const identity = identifyRequest(request.headers, compiled.policy.identity, keys);
            if (identity instanceof Promise || "problem" in identity) return undefined;
            const nowMs = clock.nowMs();
            flusher?.flushIfDue(env, nowMs, ctx);
            const screened = screen(compiled, identity.clientId, request, path, nowMs);
            if (screened instanceof Response) return screened;
            // Handed on to the app: the middleware takes the request up from here rather than screen it again.
            const namespace = (env as Record<string, unknown>)[bindingName] as RateLimiterNamespace;
            screenedInFront.set(request, { compiled, namespace, clientId: identity.clientId, screened, nowMs });
            return undefined;
          },
        },
        frontOptions,
      );
    },
  });
}
