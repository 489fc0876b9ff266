/** How a limiter made from code finds its compiled policy, is checked once against the isolate's other limiters, and is made once. */

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
  const prefixes = entryOf(
    entryOf(checked, namespace, () => new WeakMap()),
    compiled,
    () => new Set<string | undefined>(),
  );
  if (prefixes.has(prefix)) return;
  const twice = ruleDefinedTwice(namespace, prefix, compiled);
  if (twice) {
    console.error(JSON.stringify({ event: "rule-defined-twice", ...twice }));
    throw new TypeError(`createLimiter(): ${ruleDefinedTwiceDetail(twice)}`);
  }
  prefixes.add(prefix);
}

/** Limiters made, by namespace, compiled policy and metrics environment (`NO_METRICS` for none), then by their other options. */
const madeLimiters = new WeakMap<object, WeakMap<CompiledPolicy, WeakMap<object, Map<string, unknown>>>>();
const NO_METRICS = {};
let lastMade:
  | {
      namespace: object;
      compiled: CompiledPolicy;
      metrics: object;
      prefix: string | undefined;
      keySecret: string | undefined;
      cacheDenials: boolean | undefined;
      limiter: unknown;
    }
  | undefined;

/**
 * The limiter `make` makes for these options, made once per isolate: a limiter made per request (or per call of
 * `RateLimitService`, an entrypoint instance each) then costs a few lookups rather than a limiter's closures
 * (bench/README.md, "The limiter from any code (hot-admitted-core)"). Options of other kinds (a clock) are not memoized.
 */
export function madeOnce<Made>(
  namespace: unknown,
  compiled: CompiledPolicy,
  options: {
    prefix?: string | undefined;
    keySecret?: string | undefined;
    cacheDenials?: boolean | undefined;
    metrics?: object | undefined;
  },
  make: () => Made,
): Made {
  if (typeof namespace !== "object" || namespace === null) return make();
  const { prefix, keySecret, cacheDenials, metrics = NO_METRICS } = options;
  // Most apps make one limiter, over and over: the last one made is found without a lookup.
  if (
    lastMade?.namespace === namespace &&
    lastMade.compiled === compiled &&
    lastMade.metrics === metrics &&
    lastMade.prefix === prefix &&
    lastMade.keySecret === keySecret &&
    lastMade.cacheDenials === cacheDenials
  )
    return lastMade.limiter as Made;
  const byPolicy = entryOf(madeLimiters, namespace, () => new WeakMap());
  const byOptions = entryOf(
    entryOf(byPolicy, compiled, () => new WeakMap()),
    metrics,
    () => new Map<string, unknown>(),
  );
  const limiter = entryOf(byOptions, `${prefix ?? ""}\n${keySecret ?? ""}\n${cacheDenials !== false}`, make) as Made;
  lastMade = { namespace, compiled, metrics, prefix, keySecret, cacheDenials, limiter };
  return limiter;
}

/** The entry of `key` in `map`, made by `make` and kept if there is none. */
function entryOf<K, V>(map: { get(key: K): V | undefined; set(key: K, value: V): unknown }, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}
