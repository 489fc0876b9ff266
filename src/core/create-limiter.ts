/** The limiter as a call, from any code: `createLimiter(...).limit(key)`. */

import { getPath as honoPathOf } from "hono/utils/url";
import { readBodyFields } from "../identity/body-fields.ts";
import { type CallerKey, dimensionedKey, dimensionIdsOf } from "../identity/dimensions.ts";
import { type KeyHasher, keyHasherFor, secretWeakness } from "../identity/secret.ts";
import { answeredByOf, type DecisionCounters, isolateCounters } from "../metrics/decision-counters.ts";
import { isolateMetricsFlusher } from "../metrics/metrics-flusher.ts";
import { decisionLogLine, isLogged } from "../middleware/decision-log.ts";
import { type DenialCache, isolateDenialCache } from "../middleware/denials.ts";
import { isNamespace, PREFIX_PATTERN } from "../middleware/limiter-configuration.ts";
import type { ClientReport, Decision } from "../object/protocol.ts";
import { callObject, type RateLimiterNamespace } from "../object-client/call-object.ts";
import { decideRequest } from "../object-client/decide-request.ts";
import { cacheableWaitMs } from "../object-client/denial-wait.ts";
import { objectNameOf } from "../object-client/object-name.ts";
import { holdPartsOf, settleHolds } from "../object-client/settle-hold.ts";
import { type CompiledPolicy, type RuleSet, unholdableRule } from "../policy/compiled-policy.ts";
import { isBlockSeconds, MAX_MANUAL_BLOCK_SECONDS } from "../policy/override-schema.ts";
import type { Rule } from "../policy/types.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { andThen, asPromise, type MaybePromise } from "../runtime/maybe-promise.ts";
import { checkCall, clientIdOf, knownClientIdOf, settlementOf } from "./call-options.ts";
import { type LimitResult, limitResultOf, listedResult } from "./limit-result.ts";
import { checkDefinedOnce, compiledPolicyOf, madeOnce } from "./limiter-policy.ts";

/** Options of `createLimiter`. */
export interface LimiterOptions {
  /** The `RateLimiter` Durable Object namespace, e.g. `env.RATE_LIMITER`. */
  namespace: RateLimiterNamespace;
  /** The policy, as an object or a JSON string, as `RATE_LIMIT_POLICY` takes it; compiled once per value. */
  policy: unknown;
  /** Keeps this limiter's buckets apart from other limiters' on the namespace, as `rateLimit({ prefix })` does. */
  prefix?: string;
  /**
   * A secret to hash keys with (HMAC-SHA-256), as `RATE_LIMIT_KEY_SECRET` is for the middleware: at least 32
   * characters, 12 of them different. Without it, keys are hashed with plain SHA-256.
   */
  keySecret?: string;
  /** Whether repeated denials are answered from this isolate's memory until they expire. @default true */
  cacheDenials?: boolean;
  /**
   * Where to send the isolate's decision counts every 10 s: an environment with `RATE_LIMIT_METRICS` and/or
   * `RATE_LIMIT_ANALYTICS` bound (docs/metrics.md). Without it, calls are not counted.
   */
  metrics?: object;
  /** The clock of cached denials and leases. Only tests set it. */
  clock?: Clock;
}

/** What one call asks. */
export interface LimitOptions {
  /** Units charged to each rule, in place of each rule's own `cost`: tokens, bytes, messages. @default the rules' own */
  cost?: number;
  /** The rules to apply, by name. @default the rules without a `match`, or, with `request`, the rules it matches */
  rules?: readonly string[];
  /**
   * A request, for the rules' `match` (method, path), the lists' address ranges (`CF-Connecting-IP`) and the
   * dimensions the policy reads from it (a header, a query parameter, a path segment, a body field from a clone).
   */
  request?: Request;
  /** The client's tier, one of the policy's `tiers`. @default the policy's `clients` entry; an admin override wins */
  tier?: string;
  /**
   * The call's value of each dimension its rules count by whose source is the caller (`from: "caller"` in the
   * policy's `dimensions`), e.g. `{ org: user.orgId }`. Hashed like the key. Give `{ key, tier }` for a value whose
   * tier sets its dimension's rules, as the client's tier sets the client's: `{ org: { key: org.id, tier: org.plan } }`.
   */
  keys?: Readonly<Record<string, string | CallerKey | undefined>>;
  /**
   * Holds the call's charges until `settle(result.hold, …)` says how it went and what it cost (docs/configuration.md,
   * Holds); a call under a rule with `count` is held without it. A hold never settled stands as charged after the
   * policy's `holdTtlSeconds`. @default false
   */
  hold?: boolean;
  /** The invocation's context, so that work that outlives the call (batched calls, leases given back, metrics) can finish. */
  ctx?: Pick<ExecutionContext, "waitUntil">;
}

/** The limiter `createLimiter` makes. */
export interface Limiter {
  /**
   * Decides one call for `key` (a user id, a tenant, an email, an API key), charging every rule that applies or
   * none. Rejects with a `TypeError` naming what is wrong for a bad key or option.
   */
  limit(key: string, options?: LimitOptions): Promise<LimitResult>;
  /** The same, in the shape of Cloudflare's rate-limit binding: `limit({ key })`, with `delta` taken as the cost. */
  limit(options: LimitOptions & { key: string; delta?: number }): Promise<LimitResult>;
  /** The key's state under every client rule, as the admin API's inspect shows it; consumes and writes nothing. */
  inspect(key: string, options?: Pick<LimitOptions, "tier">): Promise<ClientReport & { client: string }>;
  /** Starts the key afresh: every rule's bucket full again, or only those named. An override stays. */
  reset(key: string, options?: { rules?: readonly string[] }): Promise<void>;
  /**
   * Settles a held call (`result.hold`) once its outcome is known: each rule keeps its charge, at `cost` in place of
   * what was charged, if its `count` says so for the outcome, and is refunded exactly otherwise. Resolves false when a
   * hold could not be settled (it expired, was settled before, or its object did not answer): it stands as charged.
   * @example
   * const result = await limiter.limit(email, { hold: true });
   * const ok = result.success && (await checkPassword(email, password));
   * await limiter.settle(result.hold, { successful: ok });
   */
  settle(hold: string | undefined, settlement?: SettleOptions): Promise<boolean>;
  /**
   * Blocks the key for `seconds` under every rule: each call is denied, with `retryAfterMs` until the block ends, and
   * the block outlasts the object's eviction. A penalty box (`block` on a rule) blocks by itself.
   * @example
   * await limiter.block(ip, { seconds: 3600 }); // abuse reported
   */
  block(key: string, options: { seconds: number }): Promise<void>;
  /** Lifts every block of the key, an operator's and the penalty boxes', their ladders starting again at the bottom. */
  unblock(key: string): Promise<void>;
}

/** How a held call went (`Limiter.settle`). */
export interface SettleOptions {
  /** Whether the call succeeded: `count: "failed"` rules keep only calls that did not, `"successful"` only those that did. @default true */
  successful?: boolean;
  /** What the call actually cost, in place of what was charged; `"refund"` (or 0) refunds it. @default what was charged */
  cost?: number | "refund";
}

/**
 * A limiter for any code: a fetch handler without a router, a queue consumer, a WebSocket message, a Durable Object.
 * Cheap to make per request: the policy is compiled once per value. Decides exactly as the middleware does, with the
 * same objects, batching, leases, cached denials and `onError`. Throws a `TypeError` naming the option for a bad
 * namespace, policy (a `PolicyError`), prefix or secret.
 * @example
 * const limiter = createLimiter({ namespace: env.RATE_LIMITER, policy: { rules: [{ name: "sms", limit: 3, period: "1h" }] } });
 * const { success, retryAfterMs } = await limiter.limit(phoneNumber);
 * if (!success) return new Response(`Try again in ${Math.ceil(retryAfterMs / 1000)} s`, { status: 429 });
 */
export function createLimiter(options: LimiterOptions): Limiter {
  return limiterFor(compiledPolicyOf(options.policy), options);
}

/** `createLimiter` for a policy compiled already (`RateLimitService` reads its Worker's `RATE_LIMIT_POLICY` so). */
export function limiterFor(compiled: CompiledPolicy, options: Omit<LimiterOptions, "policy">): Limiter {
  // A clock is for tests: each gets a limiter of its own.
  return options.clock === undefined
    ? madeOnce(options.namespace, compiled, options, () => makeLimiter(compiled, options))
    : makeLimiter(compiled, options);
}

function makeLimiter(compiled: CompiledPolicy, options: Omit<LimiterOptions, "policy">): Limiter {
  const { namespace, prefix } = options;
  if (!isNamespace(namespace))
    throw new TypeError("createLimiter(): namespace must be the RateLimiter Durable Object binding, e.g. env.RATE_LIMITER");
  if (prefix !== undefined && !PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(`createLimiter(): prefix must be 1 to 64 letters, digits, "_", "-", "." or ":" (got ${JSON.stringify(prefix)})`);
  }
  if (options.keySecret !== undefined) {
    const weakness = secretWeakness(options.keySecret);
    if (weakness) throw new TypeError(`createLimiter(): keySecret ${weakness}; generate one with \`openssl rand -hex 32\``);
  }
  checkDefinedOnce(namespace, prefix, compiled);
  const { policy } = compiled;
  const keys: KeyHasher = keyHasherFor(options.keySecret);
  const clock = options.clock ?? systemClock;
  const denials: DenialCache | undefined = options.cacheDenials === false ? undefined : isolateDenialCache;
  const counters: DecisionCounters | undefined = options.metrics === undefined ? undefined : isolateCounters;

  /** The rules named, each by its own name in the policy; a name it lacks is an error naming it. */
  function rulesNamed(names: readonly string[] | undefined): readonly Rule[] | undefined {
    if (names === undefined) return undefined;
    if (!Array.isArray(names) || names.length === 0) throw new TypeError("limit(): rules must be a non-empty list of rule names");
    return names.map((name) => {
      const rule = policy.rules.find((candidate) => candidate.name === name);
      if (!rule)
        throw new TypeError(
          `limit(): rules: no rule named ${JSON.stringify(name)} (the policy has ${policy.rules.map((r) => r.name).join(", ")})`,
        );
      return rule;
    });
  }

  /** The rule set of a call: by its request's match, by name, or the rules without a match; at its own cost if it has one. */
  function ruleSetOf(clientId: string, call: LimitOptions): RuleSet | "deny-listed" {
    const { request } = call;
    const named = rulesNamed(call.rules);
    const ip = request?.headers.get("cf-connecting-ip") ?? null;
    const ruleSet =
      request && named === undefined
        ? compiled.ruleSetFor(clientId, request.headers, request.method, honoPathOf(request))
        : compiled.ruleSetNamed(clientId, ip, named);
    if (ruleSet === "deny-listed" || ruleSet.rules.length === 0) return ruleSet;
    const costed = call.cost === undefined ? ruleSet : compiled.withCost(ruleSet, call.cost);
    const tiered = call.tier === undefined ? costed : compiled.withTier(costed, call.tier);
    if (call.hold !== true) return tiered;
    const unholdable = unholdableRule(tiered);
    if (unholdable)
      throw new TypeError(
        `limit(): hold: rule "${unholdable.name}" is a ${unholdable.algorithm}, which cannot hold a charge until it is settled`,
      );
    return compiled.held(tiered);
  }

  /** Decides a call: not an async function, so that what is known now is answered with one resolved promise (see maybe-promise.ts). */
  function decide(key: unknown, call: LimitOptions): Promise<LimitResult> {
    try {
      const clientId = knownClientIdOf(key, keys) ?? keys.clientId(key as string);
      return asPromise(andThen(clientId, (hashed) => decideFor(hashed, call)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A call decided for its client, in the same turn when nothing needs asking. */
  function decideFor(clientId: string, call: LimitOptions): MaybePromise<LimitResult> {
    checkCall(call, policy.tiers);
    const ruleSet = ruleSetOf(clientId, call);
    const nowMs = clock.nowMs();
    if (ruleSet === "deny-listed") return listedResult("deny-listed", nowMs);
    if (ruleSet.rules.length === 0) {
      const ip = call.request?.headers.get("cf-connecting-ip") ?? null;
      return listedResult(compiled.isAllowListed(clientId, ip) ? "allow-listed" : "no-rule-applies", nowMs);
    }
    if (counters && call.ctx) isolateMetricsFlusher.flushIfDue(options.metrics, nowMs, call.ctx);
    if (ruleSet.dimensions.length === 0) return decideCounted(clientId, call, ruleSet, undefined, nowMs);
    const { request } = call;
    const input = {
      headers: request?.headers,
      url: request?.url,
      path: request && honoPathOf(request),
      caller: call.keys,
      // A clone: the app's request keeps its body.
      body: request && (() => readBodyFields(request.clone())),
    };
    return andThen(dimensionIdsOf(ruleSet.dimensions, policy, input, keys), (found) => {
      if ("problem" in found) throw new TypeError(`limit(): ${found.problem}`);
      const counted = compiled.forDimensions(ruleSet, found);
      if (counted.rules.length === 0) return listedResult("no-rule-applies", nowMs);
      return decideCounted(clientId, call, counted, found, nowMs);
    });
  }

  /** A call decided under the rules that count it, in the objects of its dimensions (`dimensionIds`) as well. */
  function decideCounted(
    clientId: string,
    call: LimitOptions,
    ruleSet: RuleSet,
    dimensions: { ids: Record<string, string>; tiers: Record<string, string> } | undefined,
    nowMs: number,
  ): MaybePromise<LimitResult> {
    const dimensionIds = dimensions?.ids;
    const objectName = objectNameOf(prefix, clientId);
    // A denial is remembered for these rules in these objects: the same client counted in another org is another call.
    const cacheKey = dimensionIds === undefined ? ruleSet.key : dimensionedKey(ruleSet.key, dimensionIds);
    const cached = denials?.decision(objectName, cacheKey, nowMs, counters);
    if (cached) return limitResultOf(cached, nowMs, policy);
    const decision = decideRequest({
      namespace,
      prefix,
      clientId,
      tier: call.tier,
      ruleSet,
      dimensionIds,
      dimensionTiers: dimensions?.tiers,
      policy,
      waitUntil: call.ctx && ((promise) => call.ctx?.waitUntil(promise)),
      clock,
      counters,
      cacheDenials: denials !== undefined,
    });
    const answer = (decided: Decision): LimitResult => {
      counters?.record(decided, answeredByOf(decided), objectName);
      if (isLogged(decided, policy.logDecisions)) console.log(decisionLogLine(objectName, decided, false));
      // Timed from before the call, as the middleware does: the object decided later, so the denial holds at least this long.
      if (!decided.allowed) denials?.set(objectName, cacheKey, decided, nowMs, cacheableWaitMs(decided));
      return limitResultOf(decided, nowMs, policy);
    };
    return andThen(decision, answer);
  }

  return {
    limit(keyOrCall: string | (LimitOptions & { key: string; delta?: number }), call: LimitOptions = {}): Promise<LimitResult> {
      if (typeof keyOrCall === "object" && keyOrCall !== null) {
        // `delta` is Cloudflare's binding's name for the cost, so that code written for it is charged what it asks.
        const { key, delta, ...rest } = keyOrCall as LimitOptions & { key: string; delta?: number };
        if (delta !== undefined && rest.cost !== undefined) return Promise.reject(new TypeError("limit(): give cost or delta, not both"));
        return decide(key, delta === undefined ? rest : { ...rest, cost: delta });
      }
      return decide(keyOrCall, call);
    },
    async inspect(key, inspectOptions = {}) {
      const clientId = await clientIdOf(key, keys);
      checkCall(inspectOptions, policy.tiers);
      const tier = inspectOptions.tier ?? policy.clients[clientId];
      const report = await callObject(namespace, objectNameOf(prefix, clientId), policy.objectTimeoutMs, (stub) =>
        stub.inspect({ rules: compiled.clientObjectRules, tier }),
      );
      return { client: clientId, ...report };
    },
    async reset(key, resetOptions = {}) {
      const clientId = await clientIdOf(key, keys);
      const named = rulesNamed(resetOptions.rules);
      const global = named?.find((rule) => rule.scope === "global");
      if (global)
        throw new TypeError(`reset(): rules: "${global.name}" is a global rule, shared by every key; only a key's own rules are reset`);
      const names = named?.map((rule) => rule.name);
      const objectName = objectNameOf(prefix, clientId);
      await callObject(namespace, objectName, policy.objectTimeoutMs, (stub) => stub.reset(names));
      denials?.forgetClient(objectName);
    },
    async block(key, blockOptions) {
      const seconds = (blockOptions as { seconds?: unknown } | undefined)?.seconds;
      if (!isBlockSeconds(seconds))
        throw new TypeError(`block(): seconds must be a whole number from 1 to ${MAX_MANUAL_BLOCK_SECONDS} (got ${String(seconds)})`);
      const clientId = await clientIdOf(key, keys);
      const objectName = objectNameOf(prefix, clientId);
      await callObject(namespace, objectName, policy.objectTimeoutMs, (stub) => stub.block(seconds));
      counters?.recordEnd("blocks", objectName, clock.nowMs() + seconds * 1000);
    },
    async unblock(key) {
      const clientId = await clientIdOf(key, keys);
      const objectName = objectNameOf(prefix, clientId);
      await callObject(namespace, objectName, policy.objectTimeoutMs, (stub) => stub.unblock());
      denials?.forgetClient(objectName);
    },
    async settle(hold, settlement = {}) {
      // A call no rule counted, or one denied, has nothing held: settling it is nothing to do.
      if (hold === undefined) return true;
      const parts = holdPartsOf(hold);
      // Under a prefix, a hold names only this limiter's objects: one naming another's was not made by it.
      // Without one, a hold names no prefixed limiter's object (`<prefix>/…`; an IPv6 client's own id has a "/").
      const ours = (object: string) =>
        prefix === undefined ? !object.includes("/") || object.startsWith("ip:") : object.startsWith(`${prefix}/`);
      if (!parts?.every(({ object }) => ours(object)))
        throw new TypeError("settle(): hold must be the hold of a result of this limiter's limit()");
      return settleHolds(namespace, parts, settlementOf(settlement), policy.objectTimeoutMs);
    },
  };
}

/** A limiter in the shape of Cloudflare's rate-limit binding: `limit({ key, delta? })`. */
export interface RateLimitBinding {
  limit(options: { key: string; delta?: number }): Promise<LimitResult>;
}

/**
 * `limiter` in the shape of Cloudflare's rate-limit binding, without a service hop: for code written against
 * `env.X.limit({ key })`, in a Worker that bundles the package, and for its tests, which can bind a real limiter where
 * production binds `RateLimitService` (or Cloudflare's own). `delta` is the binding's name for the cost.
 * @example
 * const env = { ...testEnv, MY_RATE_LIMITER: asRateLimitBinding(createLimiter({ namespace: testEnv.RATE_LIMITER, policy })) };
 * expect((await worker.fetch(request, env, ctx)).status).toBe(429);
 */
export function asRateLimitBinding(limiter: Limiter): RateLimitBinding {
  return {
    limit({ key, delta }) {
      return delta === undefined ? limiter.limit(key) : limiter.limit(key, { cost: delta });
    },
  };
}
