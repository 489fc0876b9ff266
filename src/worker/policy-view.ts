/** The active policy as the admin API shows it (`GET {prefix}/policy`): what it limits, never whom it names. */

import type { KeyHasher } from "../identity/secret.ts";
import type { DimensionSource, Policy, Rule } from "../policy/types.ts";

/** One rule as the policy view shows it. */
export interface RuleView {
  name: string;
  algorithm: Rule["algorithm"];
  limit: number;
  periodSeconds: number;
  burst: number;
  cost: number;
  /** Whose object counts it: `client`, `global`, or a dimension's name. */
  key: string;
  mode: Rule["mode"];
  onError: Rule["onError"];
  match: { methods: string[] | null; path: string | null };
  count: "all" | "failed" | "successful";
  resetOnSuccess: boolean;
  block: { seconds: readonly number[]; after: number } | null;
}

/** What `GET {prefix}/policy` answers. */
export interface PolicyView {
  rules: RuleView[];
  /** Tier name → rule name → the limits it sets. */
  tiers: Policy["tiers"];
  /** Each dimension's source (`from` and its header or parameter name, segment, field or parts), and what a request without it gets. */
  dimensions: Record<string, DimensionSource & { lowercase: boolean; whenMissing: "reject" | "skip" }>;
  /** How many entries each list has; their addresses and ids stay out. */
  lists: { allow: number; deny: number };
  /** How many clients the policy gives a tier, by tier; their ids stay out. */
  clientsByTier: Record<string, number>;
  identity: { keyHeaders: string[]; bearer: boolean; ipFallback: boolean; ipv6PrefixLength: number };
  /**
   * How a key becomes its client id: `sha256` (`key:` + the hex SHA-256 of the key, which the dashboard computes in
   * the browser) or `hmac-sha256` (keyed with RATE_LIMIT_KEY_SECRET).
   */
  keyHashing: "sha256" | "hmac-sha256";
}

/** The policy without a secret, a raw key, a list's contents or a client's id in it. */
export function policyView(policy: Policy, keys: Pick<KeyHasher, "keyed">): PolicyView {
  const clientsByTier: Record<string, number> = {};
  for (const tier of Object.values(policy.clients)) clientsByTier[tier] = (clientsByTier[tier] ?? 0) + 1;
  const dimensions: PolicyView["dimensions"] = {};
  for (const [name, dimension] of Object.entries(policy.dimensions)) {
    dimensions[name] = { ...dimension.source, lowercase: dimension.lowercase, whenMissing: dimension.whenMissing };
  }
  const { keyHeaders, bearer, ipFallback, ipv6PrefixLength } = policy.identity;
  return {
    rules: policy.rules.map((rule) => ({
      name: rule.name,
      algorithm: rule.algorithm,
      limit: rule.limit,
      periodSeconds: rule.periodSeconds,
      burst: rule.burst,
      cost: rule.cost,
      key: rule.key,
      mode: rule.mode,
      onError: rule.onError,
      match: { methods: rule.match?.methods ?? null, path: rule.match?.path ?? null },
      count: rule.count ?? "all",
      resetOnSuccess: rule.resetOnSuccess === true,
      block: rule.block ? { seconds: rule.block.seconds, after: rule.block.after } : null,
    })),
    tiers: policy.tiers,
    dimensions,
    lists: { allow: policy.allow.length, deny: policy.deny.length },
    clientsByTier,
    identity: { keyHeaders, bearer, ipFallback, ipv6PrefixLength },
    keyHashing: keys.keyed ? "hmac-sha256" : "sha256",
  };
}
