/** What the app's options say of one request: its client's key, its cost and its tier, each checked. */

import type { Context, Env as HonoEnv } from "hono";
import { credentialProblem, type Identification, identifyRequest } from "../identity/identify.ts";
import type { KeyHasher } from "../identity/secret.ts";
import type { CompiledPolicy } from "../policy/compiled-policy.ts";
import { isCallCost, MAX_CALL_COST } from "../policy/limits.ts";
import type { MaybePromise } from "../runtime/maybe-promise.ts";
import type { RateLimitOptions } from "./rate-limit-options.ts";

/** A request's terms: the units it charges each rule and its tier, when the app's options set them. */
export type CallTerms = { cost?: number; tier?: string };

/** A request's terms without the `cost` and `tier` options: each rule's own cost, the policy's tier. */
export const NO_TERMS: CallTerms = Object.freeze({});

/**
 * The `cost` and `tier` options' answers for this request, checked: what they give often comes from the request
 * (a header, a body's size), so one that cannot be used is a 400 naming the option, never a 500.
 */
export function callTermsOf<E extends HonoEnv>(
  options: RateLimitOptions<E>,
  c: Context<E>,
  compiled: CompiledPolicy,
): CallTerms | { problem: string } {
  if (!options.cost && !options.tier) return NO_TERMS; // as most apps are: nothing allocated per request
  const cost = options.cost?.(c);
  if (cost !== undefined && !isCallCost(cost)) {
    return { problem: `the cost option gave ${String(cost)}, not a whole number from 1 to ${MAX_CALL_COST}` };
  }
  const tier = options.tier?.(c);
  if (tier !== undefined && !(typeof tier === "string" && Object.hasOwn(compiled.policy.tiers, tier))) {
    const known = Object.keys(compiled.policy.tiers);
    return { problem: `the tier option gave ${JSON.stringify(tier)}, not one of the policy's tiers (${known.join(", ") || "none"})` };
  }
  return { ...(cost !== undefined ? { cost } : {}), ...(tier !== undefined ? { tier } : {}) };
}

/** The client of a request: the `key` option's key, hashed, or the identity its headers carry. */
export function identityOf<E extends HonoEnv>(
  options: RateLimitOptions<E>,
  c: Context<E>,
  compiled: CompiledPolicy,
  keys: KeyHasher,
): MaybePromise<Identification> {
  const { key: keyOption } = options;
  if (!keyOption) return identifyRequest(c.req.raw.headers, compiled.policy.identity, keys);
  const keyed = async (): Promise<Identification> => {
    const key: unknown = await keyOption(c);
    if (typeof key !== "string") return { problem: `the key option gave ${key === null ? "null" : typeof key}, not a string` };
    const problem = credentialProblem("the key option's key", key);
    return problem ? { problem } : { clientId: keys.known(key) ?? (await keys.clientId(key)) };
  };
  return keyed();
}
