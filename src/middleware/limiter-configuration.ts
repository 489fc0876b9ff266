import { type KeyHasher, keyHasherFor, secretWeakness } from "../identity/secret.ts";
import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import { type RuleDefinedTwice, ruleDefinedTwice, ruleDefinedTwiceDetail } from "../object-client/rule-definitions.ts";
import { type CompiledPolicy, compilePolicy, loadCompiledPolicy } from "../policy/compiled-policy.ts";
import { PolicyError, parsePolicy } from "../policy/load.ts";

/** What is wrong with the environment's configuration: the detail of the 500, and what to log of it. */
export interface ConfigurationProblem {
  detail: string;
  missingBinding?: string;
  ruleDefinedTwice?: RuleDefinedTwice;
}

/** What a limiter's prefix may be (`rateLimit({ prefix })`, `createLimiter({ prefix })`): it becomes part of object names. */
export const PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Whether a binding is a `RateLimiter` Durable Object namespace. */
export function isNamespace(value: unknown): value is RateLimiterNamespace {
  return typeof value === "object" && value !== null && "getByName" in value;
}

/**
 * How one `rateLimit()` reads its configuration from a request's environment: the compiled policy (its own, else
 * `RATE_LIMIT_POLICY`), its namespace bound, and no rule of it defined otherwise by another limiter of the isolate
 * (see `ruleDefinedTwice`). A bad prefix or policy given in code throws here, once, naming the field.
 * @example const configurationOf = limiterConfiguration({ binding: "RATE_LIMITER" }); configurationOf(env)
 */
export function limiterConfiguration(options: { policy?: unknown; binding: string; prefix?: string | undefined }) {
  const { binding, prefix } = options;
  if (prefix !== undefined && !PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(`rateLimit() prefix: must be 1 to 64 letters, digits, "_", "-", "." or ":" (got ${JSON.stringify(prefix)})`);
  }
  const fixedPolicy = options.policy === undefined ? undefined : compilePolicy(parsePolicy(options.policy));
  /** The policy and namespace of the last request that found no rule defined twice. */
  let checkedPolicy: CompiledPolicy | undefined;
  let checkedNamespace: RateLimiterNamespace | undefined;

  /**
   * The environment's compiled policy, its namespace checked (`env[binding]` is then the namespace); otherwise
   * what the middleware answers 500 with (an object only then, so that a request allocates nothing for it).
   */
  return function configurationOf(env: Record<string, unknown>): CompiledPolicy | ConfigurationProblem {
    const compiled = fixedPolicy ?? loadCompiledPolicy(env.RATE_LIMIT_POLICY);
    if (compiled instanceof PolicyError) return { detail: compiled.message };
    const namespace = env[binding];
    if (!isNamespace(namespace)) return { detail: `the Durable Object binding ${binding} is not configured`, missingBinding: binding };
    // The same policy and namespace as the last request's, as nearly every request has: checked already.
    if (compiled === checkedPolicy && namespace === checkedNamespace) return compiled;
    const twice = ruleDefinedTwice(namespace, prefix, compiled);
    if (twice) return { detail: ruleDefinedTwiceDetail(twice), ruleDefinedTwice: twice };
    checkedPolicy = compiled;
    checkedNamespace = namespace;
    return compiled;
  };
}

/** The variable that holds the secret keys are hashed with (docs/configuration.md, Keyed hashing). */
export const KEY_SECRET_VARIABLE = "RATE_LIMIT_KEY_SECRET";

/** The last secret checked and what it gave: nearly every request carries the one before's. */
let lastKeySecret: { secret: unknown; answer: KeyHasher | ConfigurationProblem } | undefined;

/**
 * How keys become client ids in an environment: by HMAC under `RATE_LIMIT_KEY_SECRET` when it is set, else by plain
 * SHA-256. A secret too weak to keep a dictionary out is a configuration problem, never a silent fallback: the ids
 * it would give are the ones that secret is meant to protect.
 */
export function keyHasherOf(env: Record<string, unknown>): KeyHasher | ConfigurationProblem {
  const secret = env[KEY_SECRET_VARIABLE];
  if (lastKeySecret !== undefined && lastKeySecret.secret === secret) return lastKeySecret.answer;
  let answer: KeyHasher | ConfigurationProblem;
  if (secret === undefined || secret === "") answer = keyHasherFor(undefined);
  else if (typeof secret !== "string")
    answer = { detail: `${KEY_SECRET_VARIABLE}: must be a string (set it with \`wrangler secret put\`)` };
  else {
    const weakness = secretWeakness(secret);
    answer = weakness
      ? { detail: `${KEY_SECRET_VARIABLE}: ${weakness}; generate one with \`openssl rand -hex 32\`` }
      : keyHasherFor(secret);
  }
  lastKeySecret = { secret, answer };
  return answer;
}

/** Logs what a configuration problem names beyond its 500: the missing binding, or both definitions of a rule. */
export function logConfigurationProblem({ missingBinding, ruleDefinedTwice: twice }: ConfigurationProblem): void {
  if (missingBinding) console.error(JSON.stringify({ event: "binding-missing", binding: missingBinding }));
  if (twice) console.error(JSON.stringify({ event: "rule-defined-twice", ...twice }));
}
