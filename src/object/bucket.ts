import { type AlgorithmName, algorithmFor } from "../limiter/registry.ts";
import type { RuleLimits } from "../limiter/types.ts";
import type { ObjectRule } from "./protocol.ts";

/** One rule's bucket: the state is only valid for these limits. */
export interface Bucket {
  algorithm: AlgorithmName;
  limits: RuleLimits;
  state: unknown;
}

/** The limits of a rule, as its algorithm sees them. */
export function limitsOf(rule: ObjectRule): RuleLimits {
  return { limit: rule.limit, periodSeconds: rule.periodSeconds, burst: rule.burst };
}

/** Whether a bucket was made for these limits: when they change, the bucket is rescaled to the new ones (`rescaledBucket`). */
export function hasSameLimits(bucket: Bucket, rule: ObjectRule): boolean {
  return (
    bucket.algorithm === rule.algorithm &&
    bucket.limits.limit === rule.limit &&
    bucket.limits.periodSeconds === rule.periodSeconds &&
    bucket.limits.burst === rule.burst
  );
}

/** A new bucket: full, less `spentUnits` (leases still hold them, or they were spent under other limits; at most its burst). */
export function freshBucket(algorithm: AlgorithmName, limits: RuleLimits, nowMs: number, spentUnits: number): Bucket {
  const strategy = algorithmFor(algorithm);
  const fresh = strategy.initialState(limits, nowMs);
  const spent = Math.min(spentUnits, limits.burst);
  return { algorithm, limits, state: spent > 0 ? strategy.decide(fresh, limits, nowMs, spent).state : fresh };
}

/**
 * The bucket under a rule's new limits (a new policy, tier or override, or another Worker version's): what the
 * client spent carries over and it refills at the new rate (docs/algorithms.md, When limits change). Under another
 * algorithm, what was spent is read in whole requests (rounded up) and charged to a new bucket.
 */
export function rescaledBucket(bucket: Bucket, rule: ObjectRule, nowMs: number): Bucket {
  const to = limitsOf(rule);
  if (bucket.algorithm === rule.algorithm) {
    return { algorithm: rule.algorithm, limits: to, state: algorithmFor(rule.algorithm).rescale(bucket.state, bucket.limits, to, nowMs) };
  }
  const { remaining } = algorithmFor(bucket.algorithm).decide(bucket.state, bucket.limits, nowMs, 0).decision;
  return freshBucket(rule.algorithm, to, nowMs, Math.max(0, bucket.limits.burst - remaining));
}
