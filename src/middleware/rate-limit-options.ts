/** The options of `rateLimit()`, and what it sets on the context. */

import type { Context, Env as HonoEnv } from "hono";
import type { CallerKey } from "../identity/dimensions.ts";
import type { Decision } from "../object/protocol.ts";
import type { PolicyInput } from "../policy/schema.ts";
import type { Clock } from "../runtime/clock.ts";

/**
 * Options of the `rateLimit()` middleware. `E` is the app's Hono environment, so that the options that read the
 * context see its variables and bindings: `rateLimit<{ Variables: { user: User } }>({ key: (c) => c.get("user").id })`.
 */
// biome-ignore lint/suspicious/noExplicitAny: as Hono's own `Env` default, so that options type-check in any app
export interface RateLimitOptions<E extends HonoEnv = any> {
  /**
   * The policy, as an object (typed as you write it: `PolicyInput`) or a JSON string; validated once.
   * @default the `RATE_LIMIT_POLICY` binding of the Worker's environment
   */
  policy?: PolicyInput | string;
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
   * `RATE_LIMIT_ANALYTICS` (a Workers Analytics Engine dataset).
   * @default true when the Worker binds either of them, else false: counts with nowhere to go are not kept
   */
  metrics?: boolean;
  /**
   * The client's key, from what the app knows (a user id after its own auth, a tenant): hashed like an API key before
   * it names an object or a log field. An empty key, one that is not a string or one over 256 bytes answers 400; it
   * never falls into a shared bucket. hono-rate-limiter calls it `keyGenerator`.
   * @default the request's headers: an API key, else a Bearer token, else `CF-Connecting-IP` (the policy's `identity`)
   * @example key: (c) => c.get("user").id
   */
  key?: (c: Context<E>) => string | Promise<string>;
  /**
   * The request's value of each dimension whose source is the caller (`from: "caller"` in the policy's `dimensions`),
   * hashed like a key: the org, the tenant, the email of a login form. `{ key, tier }` gives the value's tier, which
   * sets its dimension's rules as the client's tier sets the client's.
   * @example keys: (c) => ({ org: c.get("user").orgId })
   * @example keys: (c) => ({ org: { key: c.get("org").id, tier: c.get("org").plan } })
   */
  keys?: (c: Context<E>) => Readonly<Record<string, string | CallerKey | undefined>>;
  /** The client's tier, one of the policy's `tiers`. @default the policy's `clients` entry; an admin override wins */
  tier?: (c: Context<E>) => string | undefined;
  /** Units this request charges each rule that applies, in place of each rule's own `cost`: a whole number from 1. */
  cost?: (c: Context<E>) => number;
  /** Requests to let through without limiting or counting them. */
  skip?: (c: Context<E>) => boolean;
  /**
   * The app's own answer to a denial, in place of the 429 problem+json: the limiter adds the same headers to it
   * (RateLimit, RateLimit-Policy, Retry-After). `decision` says which rules denied and for how long.
   * @example onDenied: (c, decision) => c.json({ error: "slow down", retryAfterMs: decision.rules[0]?.retryAfterMs }, 429)
   */
  onDenied?: (c: Context<E>, decision: Decision) => Response | Promise<Response>;
  /**
   * Whether an admitted request succeeded, once its response is known: the rules with `count: "failed"` keep only
   * the requests it says did not, those with `count: "successful"` only those it says did, and the others are refunded
   * exactly (docs/configuration.md, Holds). A response whose body breaks off has not succeeded.
   * @default (c) => c.res.status < 400
   */
  requestWasSuccessful?: (c: Context<E>) => boolean;
  /**
   * The request's actual cost, once its response has finished (the streamed body's end, an error, or the client
   * gone): every admission is held, and then kept at this cost in place of the one charged, or refunded exactly for
   * `"refund"`. More than was charged is charged too: the bucket owes it, and later requests wait. A whole number
   * from 0 to 1,000,000,000; anything else leaves the charge as it was, logged.
   * @example settle: (c) => c.get("tokensUsed") ?? "refund"
   */
  settle?: (c: Context<E>) => number | "refund" | Promise<number | "refund">;
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
