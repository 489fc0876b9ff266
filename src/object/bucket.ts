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

/** Whether a bucket was made for these limits: when they change, the rule starts a new bucket. */
export function hasSameLimits(bucket: Bucket, rule: ObjectRule): boolean {
  return (
    bucket.algorithm === rule.algorithm &&
    bucket.limits.limit === rule.limit &&
    bucket.limits.periodSeconds === rule.periodSeconds &&
    bucket.limits.burst === rule.burst
  );
}

/** A new bucket: full, less `lentUnits` that leases still hold of it (at most its burst). */
export function freshBucket(algorithm: AlgorithmName, limits: RuleLimits, nowMs: number, lentUnits: number): Bucket {
  const strategy = algorithmFor(algorithm);
  const fresh = strategy.initialState(limits, nowMs);
  const lent = Math.min(lentUnits, limits.burst);
  return { algorithm, limits, state: lent > 0 ? strategy.decide(fresh, limits, nowMs, lent).state : fresh };
}
