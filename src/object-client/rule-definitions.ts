import type { ObjectRule } from "../object/protocol.ts";
import type { CompiledPolicy } from "../policy/compiled-policy.ts";
import type { RateLimiterNamespace } from "./call-object.ts";

/**
 * Two limiters in one isolate (two `rateLimit()` in one app, say) whose policies both define a rule of one name,
 * with other limits: both would count in that rule's one bucket in each client's object, so neither would hold.
 * Each limiter has its own buckets when it has its own `prefix`; without one, the second definition a rule name gets
 * in a namespace and prefix is refused at its first use, and the limiter answers 500 naming both.
 */
export interface RuleDefinedTwice {
  rule: string;
  prefix: string | undefined;
  /** The definition the isolate saw first, and the one refused. */
  definitions: [first: string, second: string];
}

/** Per namespace, then prefix ("" for none), then scope and rule name: the first definition seen in this isolate. */
const seen = new WeakMap<RateLimiterNamespace, Map<string, Map<string, string>>>();

/**
 * The first rule of the policy that another policy in this isolate defined otherwise under the same namespace and
 * prefix, or undefined; the policy's definitions are remembered for those that come later. Its caller asks once per
 * policy and namespace (see `limiterConfiguration`); asking again finds the same.
 */
export function ruleDefinedTwice(
  namespace: RateLimiterNamespace,
  prefix: string | undefined,
  compiled: CompiledPolicy,
): RuleDefinedTwice | undefined {
  let prefixes = seen.get(namespace);
  if (!prefixes) {
    prefixes = new Map();
    seen.set(namespace, prefixes);
  }
  let definitions = prefixes.get(prefix ?? "");
  if (!definitions) {
    definitions = new Map();
    prefixes.set(prefix ?? "", definitions);
  }
  // A client rule and a global rule of one name count in different objects: each is compared with its own kind.
  const candidates = [...compiled.objectRules.values()].map((rule) => ({
    rule: rule.name,
    key: `${rule.scope}\n${rule.name}`,
    terms: bucketTermsOf(rule),
  }));
  for (const { rule, key, terms } of candidates) {
    const first = definitions.get(key);
    if (first !== undefined && first !== terms) return { rule, prefix, definitions: [first, terms] };
  }
  // Remembered only when none conflicts: a refused policy never becomes the definition others are held to.
  for (const { key, terms } of candidates) if (!definitions.has(key)) definitions.set(key, terms);
  return undefined;
}

/**
 * What two limiters sharing a rule's bucket must agree on: how it counts (algorithm, limits, the limits of each
 * tier) and whether it blocks, so that a shadow rule never spends an enforcing rule's budget. Its cost may differ,
 * as two routes may cost one budget differently.
 */
function bucketTermsOf({ algorithm, limit, periodSeconds, burst, mode, tiers }: ObjectRule): string {
  return JSON.stringify({ algorithm, limit, periodSeconds, burst, mode, ...(tiers ? { tiers } : {}) });
}

/** What the 500 of a limiter whose rule was defined twice says, naming the rule, both definitions and the fix. */
export function ruleDefinedTwiceDetail({ rule, prefix, definitions }: RuleDefinedTwice): string {
  const where = prefix === undefined ? "without a prefix" : `under prefix "${prefix}"`;
  return (
    `rule "${rule}" is defined twice in this Worker ${where}, as ${definitions[0]} and as ${definitions[1]}: ` +
    "they would count in one bucket; give one limiter its own `prefix`, or the rule another name"
  );
}
