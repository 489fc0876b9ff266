/** How a limiter made from code finds its compiled policy, and is checked once against the isolate's other limiters. */

import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import { ruleDefinedTwice, ruleDefinedTwiceDetail } from "../object-client/rule-definitions.ts";
import { type CompiledPolicy, compilePolicy } from "../policy/compiled-policy.ts";
import { parsePolicy } from "../policy/load.ts";

/**
 * Compiled policies by the object or string given, so that a limiter made per request compiles nothing. A policy
 * binding (`env.RATE_LIMIT_POLICY` from a TOML table) may be a new object on every request: one not seen is compared
 * by content with the last one before it is parsed again.
 */
const compiledByValue = new WeakMap<object, CompiledPolicy>();
let lastPolicy: { fingerprint: string; compiled: CompiledPolicy } | undefined;

export function compiledPolicyOf(raw: unknown): CompiledPolicy {
  const known = typeof raw === "object" && raw !== null ? compiledByValue.get(raw) : undefined;
  if (known) return known;
  const fingerprint = typeof raw === "string" ? raw : JSON.stringify(raw);
  if (lastPolicy?.fingerprint !== fingerprint) lastPolicy = { fingerprint: fingerprint ?? "", compiled: compilePolicy(parsePolicy(raw)) };
  if (typeof raw === "object" && raw !== null) compiledByValue.set(raw, lastPolicy.compiled);
  return lastPolicy.compiled;
}

/** Namespaces and policies checked for a rule defined twice (see `ruleDefinedTwice`), per prefix. */
const checked = new WeakMap<RateLimiterNamespace, WeakMap<CompiledPolicy, Set<string | undefined>>>();

export function checkDefinedOnce(namespace: RateLimiterNamespace, prefix: string | undefined, compiled: CompiledPolicy): void {
  let byPolicy = checked.get(namespace);
  if (!byPolicy) {
    byPolicy = new WeakMap();
    checked.set(namespace, byPolicy);
  }
  let prefixes = byPolicy.get(compiled);
  if (!prefixes) {
    prefixes = new Set();
    byPolicy.set(compiled, prefixes);
  }
  if (prefixes.has(prefix)) return;
  const twice = ruleDefinedTwice(namespace, prefix, compiled);
  if (twice) {
    console.error(JSON.stringify({ event: "rule-defined-twice", ...twice }));
    throw new TypeError(`createLimiter(): ${ruleDefinedTwiceDetail(twice)}`);
  }
  prefixes.add(prefix);
}
