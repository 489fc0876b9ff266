import type { Context, Env as HonoEnv, MiddlewareHandler, Next } from "hono";
import { misconfiguredResponse, problemResponse } from "../http/problem.ts";
import { formatRateLimitHeaders } from "../http/rate-limit-headers.ts";
import { dimensionedKey, dimensionIdsOf } from "../identity/dimensions.ts";
import { type Identification, identifyRequest } from "../identity/identify.ts";
import type { KeyHasher } from "../identity/secret.ts";
import { answeredByOf, type DecisionCounters, isolateCounters } from "../metrics/decision-counters.ts";
import { bindsMetricsSink, isolateMetricsFlusher } from "../metrics/metrics-flusher.ts";
import type { Decision, HoldSettlement } from "../object/protocol.ts";
import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import { decideRequest } from "../object-client/decide-request.ts";
import { cacheableWaitMs } from "../object-client/denial-wait.ts";
import { objectNameOf } from "../object-client/object-name.ts";
import { holdPartsOf, settleHolds } from "../object-client/settle-hold.ts";
import { type CompiledPolicy, type RuleSet, unholdableRule } from "../policy/compiled-policy.ts";
import { systemClock } from "../runtime/clock.ts";
import { executionContextOf, waitUntilOf } from "../runtime/execution-context.ts";
import { andThen, asPromise, isPending, type MaybePromise } from "../runtime/maybe-promise.ts";
import { decisionLogLine, isLogged } from "./decision-log.ts";
import { type DenialCache, denialResponse, isolateDenialCache } from "./denials.ts";
import { type Front, type FrontOptions, frontOf, type RepeatedDenials, type RoutedApp, takeScreening } from "./front.ts";
import { keyHasherOf, limiterConfiguration, logConfigurationProblem } from "./limiter-configuration.ts";
import type { RateLimitOptions, RateLimitVariables } from "./rate-limit-options.ts";
import { takeBodyFields } from "./request-body.ts";
import { type CallTerms, callTermsOf, identityOf, NO_TERMS } from "./request-options.ts";
import { type SettlementOptions, settleWhenFinished } from "./settle-response.ts";

export type { RateLimitOptions, RateLimitVariables } from "./rate-limit-options.ts";

/** The `rateLimit()` middleware, and what puts it in front of a whole app. */
export interface RateLimitMiddleware extends MiddlewareHandler<{ Variables: RateLimitVariables }> {
  /**
   * A Worker's handler for `app` that answers a client's repeated denial before `app` routes the request,
   * from the same cache and with the same response as the middleware, and hands every other request to
   * `app.fetch`. Routing is most of what a cached denial costs inside Hono (bench/README.md, "The denied flood: its
   * floor, and what `front()` adds"). Use it
   * only when every request of `app` passes this middleware before anything else answers or adds headers
   * (`app.use("*", limiter)` first), apart from those `bypass` picks out.
   */
  front<App extends RoutedApp>(app: App, options?: FrontOptions): Front<App>;
}

type LimitedContext = Context<{ Variables: RateLimitVariables }>;

/** What is known of a request once its client is: what screening it, and every step after, reads. */
interface Screening {
  compiled: CompiledPolicy;
  namespace: RateLimiterNamespace;
  /** How keys, and dimensions' values, become ids (under the key secret, if any). */
  keys: KeyHasher;
  clientId: string;
  /** When screening began: a denial is cached from then. */
  nowMs: number;
  /** Where this request's decision is counted: none when metrics are off or, by default, when nothing is bound to send them to. */
  counters: DecisionCounters | undefined;
}

/** A request `front()` screened and passed on to the app: its screening and what it found, the rules that apply. */
interface FrontScreening extends Screening {
  screened: RuleSet | "deny-listed";
}

/** One request being limited, once its client is known: what each step of the pipeline reads. */
/** The objects of a request's dimensions, and the tiers the app named for them (see `dimensionIdsOf`). */
interface CountedDimensions {
  ids: Record<string, string>;
  tiers: Record<string, string>;
}

interface Limiting extends Screening {
  c: LimitedContext;
  next: Next;
  /** The tier the app's `tier` option gave, if any. */
  tier: string | undefined;
}

/**
 * Rate-limits every request through the client's own Durable Object. Admitted
 * requests continue to the next handler; denied ones get 429 problem+json (or what
 * `onDenied` answers). Both carry the RateLimit and RateLimit-Policy headers.
 *
 * One pipeline serves every request: configuration → identity (`key`, else the
 * headers) → the rules that apply (`screen`) → a cached denial, or the object's
 * decision → the answer. `front()` runs its first steps before routing and answers
 * only what the cache can.
 * @example
 * app.use("/api/*", rateLimit({ policy: { rules: [{ name: "api", limit: 100, period: "1m" }] }, key: (c) => c.get("user").id }));
 */
// biome-ignore lint/suspicious/noExplicitAny: see RateLimitOptions
export function rateLimit<E extends HonoEnv = any>(options: RateLimitOptions<E> = {}): RateLimitMiddleware {
  const bindingName = options.binding ?? "RATE_LIMITER";
  const { prefix, onDenied } = options;
  const configurationOf = limiterConfiguration({ policy: options.policy, binding: bindingName, prefix });
  const denials: DenialCache | undefined = options.cacheDenials === false ? undefined : isolateDenialCache;
  const clock = options.clock ?? systemClock;
  /** Whether `front()` may answer for the middleware: not when an option must see the request's context first. */
  const answersInFront = !options.key && !options.skip && !options.cost && !options.tier && !onDenied;
  /** The middleware's context as the app's own: the middleware runs in the app, so it is. */
  const asApp = (c: LimitedContext) => c as unknown as Context<E>;
  const settlementOptions = options as SettlementOptions;
  const countersFor = (env: Record<string, unknown>): DecisionCounters | undefined =>
    (options.metrics ?? bindsMetricsSink(env)) ? isolateCounters : undefined;

  /**
   * The rules that apply to an identified client's request (or "deny-listed"), at the `cost` option's cost, or the
   * answer to it when the cache has one: a repeated denial within its retry time, which the object would only repeat.
   */
  function screen(screening: Screening, request: Request, path: string, terms: CallTerms): RuleSet | "deny-listed" | Response {
    const { compiled, clientId, nowMs, counters } = screening;
    const matched = compiled.ruleSetFor(clientId, request.headers, request.method, path);
    if (matched === "deny-listed" || matched.rules.length === 0) return matched;
    const costed = terms.cost === undefined ? matched : compiled.withCost(matched, terms.cost);
    // A tier named per request keeps its denials and leases apart from another tier's (see `withTier`).
    const tiered = terms.tier === undefined ? costed : compiled.withTier(costed, terms.tier);
    // Settled by the app: every admission is held until its response says what it cost.
    if (options.settle) {
      const unholdable = unholdableRule(tiered);
      if (unholdable)
        return misconfiguredResponse(
          `settle: rule "${unholdable.name}" is a ${unholdable.algorithm}, which cannot hold a charge until it is settled`,
        );
    }
    const ruleSet = options.settle ? compiled.held(tiered) : tiered;
    // The app answers its own denials, cached ones too, and a denial in a dimension's object is remembered by its value,
    // which is known only once it is hashed (see `limitScreened`).
    if (denials === undefined || onDenied || ruleSet.dimensions.length > 0) return ruleSet;
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
    keys: KeyHasher,
    identity: Identification,
  ): MaybePromise<Response | undefined> {
    if ("problem" in identity) {
      return problemResponse({ status: 400, title: "No usable client identity", detail: identity.problem });
    }
    const nowMs = clock.nowMs();
    const env = (c.env ?? {}) as Record<string, unknown>;
    const counters = countersFor(env);
    if (counters) isolateMetricsFlusher.flushIfDue(c.env, nowMs, executionContextOf(c));
    const terms = callTermsOf(options, asApp(c), compiled);
    if ("problem" in terms) return problemResponse({ status: 400, title: "Bad request", detail: terms.problem });
    const { clientId } = identity;
    const limiting: Limiting = { c, next, compiled, namespace, keys, clientId, nowMs, tier: terms.tier, counters };
    return limitScreened(limiting, screen(limiting, c.req.raw, c.req.path, terms));
  }

  /** What follows screening: the 403 of a deny-listed client, a cached denial, the next handler, or the object's decision. */
  function limitScreened(limiting: Limiting, screened: RuleSet | "deny-listed" | Response): MaybePromise<Response | undefined> {
    if (screened === "deny-listed") {
      return problemResponse({ status: 403, title: "Forbidden", detail: "This client is not allowed to use this API." });
    }
    if (screened instanceof Response) return screened;
    if (screened.rules.length === 0) {
      limiting.c.set("rateLimit", undefined);
      return limiting.next().then(() => undefined);
    }
    if (screened.dimensions.length === 0) return limitCounted(limiting, screened, undefined);
    const { c } = limiting;
    const { raw } = c.req;
    const input = {
      headers: raw.headers,
      url: raw.url,
      path: c.req.path,
      caller: options.keys?.(asApp(c)),
      body: () => takeBodyFields(c.req),
    };
    return andThen(dimensionIdsOf(screened.dimensions, limiting.compiled.policy, input, limiting.keys), (found) => {
      if ("problem" in found) {
        const status = found.status ?? 400;
        return problemResponse({ status, title: status === 413 ? "Content too large" : "Bad request", detail: found.problem });
      }
      const counted = limiting.compiled.forDimensions(screened, found);
      return counted.rules.length === 0 ? limitScreened(limiting, counted) : limitCounted(limiting, counted, found);
    });
  }

  /** A cached denial of these rules in these objects, or the objects' decision. */
  function limitCounted(
    limiting: Limiting,
    ruleSet: RuleSet,
    dimensions: CountedDimensions | undefined,
  ): MaybePromise<Response | undefined> {
    const dimensionIds = dimensions?.ids;
    const cacheKey = dimensionIds === undefined ? ruleSet.key : dimensionedKey(ruleSet.key, dimensionIds);
    // Screening has looked up the denials of rule sets without dimensions already, unless the app answers them.
    if (denials && (onDenied || dimensionIds !== undefined)) {
      const objectName = objectNameOf(prefix, limiting.clientId);
      if (onDenied) {
        const cached = denials.decision(objectName, cacheKey, limiting.nowMs, limiting.counters);
        if (cached) return deniedByApp(limiting, cached);
      } else {
        const cached = denials.answer(objectName, cacheKey, limiting.nowMs, limiting.compiled.policy, limiting.counters);
        if (cached) return cached;
      }
    }
    return decideAndAnswer(limiting, ruleSet, dimensions, cacheKey);
  }

  /** Asks the objects (or their leases), answers a denial (and remembers it) or passes the request on with the headers. */
  function decideAndAnswer(
    limiting: Limiting,
    ruleSet: RuleSet,
    dimensions: CountedDimensions | undefined,
    cacheKey: string,
  ): MaybePromise<Response | undefined> {
    const decision = decideRequest({
      namespace: limiting.namespace,
      prefix,
      clientId: limiting.clientId,
      tier: limiting.tier,
      ruleSet,
      dimensionIds: dimensions?.ids,
      dimensionTiers: dimensions?.tiers,
      policy: limiting.compiled.policy,
      waitUntil: waitUntilOf(executionContextOf(limiting.c)),
      clock,
      counters: limiting.counters,
      cacheDenials: denials !== undefined,
    });
    return andThen(decision, (decided) => respond(limiting, cacheKey, decided));
  }

  /** A denial's response (remembered), or the next handler's with the headers. */
  function respond(limiting: Limiting, cacheKey: string, decision: Decision): MaybePromise<Response | undefined> {
    const { c, next, clientId, counters } = limiting;
    const { policy } = limiting.compiled;
    // With a prefix, logs and metrics name the client as its object is named, so that they tell the limiters apart.
    const objectName = objectNameOf(prefix, clientId);
    counters?.record(decision, answeredByOf(decision), objectName);
    if (isLogged(decision, policy.logDecisions)) console.log(decisionLogLine(objectName, decision, false));
    if (!decision.allowed) {
      // Timed from before the call: the object decided later, so the denial holds at least this long.
      denials?.set(objectName, cacheKey, decision, limiting.nowMs, cacheableWaitMs(decision));
      return onDenied ? deniedByApp(limiting, decision) : denialResponse(decision, policy);
    }
    c.set("rateLimit", decision);
    return next().then(() => {
      const headers = formatRateLimitHeaders(decision, policy);
      const responseHeaders = c.res.headers;
      for (const name in headers) responseHeaders.set(name, headers[name] as string);
      if (decision.hold !== undefined) {
        const waitUntil = waitUntilOf(executionContextOf(c));
        settleWhenFinished(c, settlementOptions, (settlement) => settleHeld(limiting, decision, settlement), waitUntil);
      }
      return undefined;
    });
  }

  /** Settles a held admission in every object that holds a part of it (in the request's `waitUntil`: `settleWhenFinished`). */
  function settleHeld(limiting: Limiting, decision: Decision, settlement: HoldSettlement): Promise<unknown> {
    const parts = holdPartsOf(decision.hold) ?? [];
    return settleHolds(limiting.namespace, parts, settlement, limiting.compiled.policy.objectTimeoutMs);
  }

  /** The app's own answer to a denial (`onDenied`), with the headers the limiter's own would carry. */
  async function deniedByApp(limiting: Limiting, decision: Decision): Promise<Response> {
    const answer = await (onDenied as NonNullable<typeof onDenied>)(asApp(limiting.c), decision);
    const response = new Response(answer.body, answer); // fresh: the app's may have immutable headers (one it fetched)
    const headers = formatRateLimitHeaders(decision, limiting.compiled.policy);
    for (const name in headers) response.headers.set(name, headers[name] as string);
    return response;
  }

  /** What `front()` asks of the middleware: its cached denials, and the screening of a request it passes on. */
  const repeatedDenials: RepeatedDenials<FrontScreening> = {
    get isEmpty() {
      return !answersInFront || denials === undefined || denials.size === 0;
    },
    screen(request, path, env, ctx) {
      const bindings = (env ?? {}) as Record<string, unknown>;
      const compiled = configurationOf(bindings);
      const keys = keyHasherOf(bindings);
      if ("detail" in compiled || "detail" in keys) return undefined;
      // A key not hashed yet is left to the middleware, which goes on with the hash started here.
      const identity = identifyRequest(request.headers, compiled.policy.identity, keys);
      if (isPending(identity) || "problem" in identity) return undefined;
      const nowMs = clock.nowMs();
      const counters = countersFor(bindings);
      if (counters) isolateMetricsFlusher.flushIfDue(env, nowMs, ctx);
      const namespace = bindings[bindingName] as RateLimiterNamespace;
      const screening: Screening = { compiled, namespace, keys, clientId: identity.clientId, nowMs, counters };
      const screened = screen(screening, request, path, NO_TERMS);
      return screened instanceof Response ? screened : { screened: { ...screening, screened } };
    },
  };

  // Not an async function: a repeated denial is answered without one's allocations (see maybe-promise.ts).
  const middleware: MiddlewareHandler<{ Variables: RateLimitVariables }> = function rateLimitMiddleware(c, next) {
    // What front() screened needs no second look at the configuration: it read the same env moments ago.
    const fromFront = takeScreening(c.req.raw, repeatedDenials);
    if (fromFront) return asPromise(limitScreened({ ...fromFront, c, next, tier: undefined }, fromFront.screened));
    if (options.skip?.(asApp(c))) {
      c.set("rateLimit", undefined);
      return next();
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
    return asPromise(
      andThen(identityOf(options, asApp(c), configuration, keys), (identity) =>
        limitClient(c, next, configuration, namespace, keys, identity),
      ),
    );
  };

  return Object.assign(middleware, {
    front<App extends RoutedApp>(app: App, frontOptions: FrontOptions = {}): Front<App> {
      return frontOf(app, repeatedDenials, frontOptions);
    },
  });
}
