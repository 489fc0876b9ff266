import { type AlgorithmName, algorithmsWithBurst } from "../limiter/registry.ts";
import type { Limits } from "./types.ts";

/** Whether a rule of this algorithm has a burst: the window algorithms allow `limit` per window and have none. */
export function hasBurst(algorithm: AlgorithmName): boolean {
  return algorithmsWithBurst.has(algorithm);
}

/** What a policy or override that sets a burst on a window rule is told. */
export function noBurstProblem(algorithm: AlgorithmName): string {
  return `${algorithm} has no burst (it allows \`limit\` per window): remove it`;
}

/**
 * A rule with a tier's or an override's limits applied. Limits that set `limit` but not
 * `burst` get burst = that limit; a rule without a burst keeps burst = its limit.
 */
export function withLimits<R extends { algorithm: AlgorithmName; limit: number; periodSeconds: number; burst: number }>(
  rule: R,
  limits: Limits,
): R {
  const limit = limits.limit ?? rule.limit;
  const burst = hasBurst(rule.algorithm) ? (limits.burst ?? limits.limit ?? rule.burst) : limit;
  return { ...rule, limit, periodSeconds: limits.periodSeconds ?? rule.periodSeconds, burst };
}

/** Largest cost one request or call may be charged (`limit(key, { cost })`, the middleware's `cost` option). */
export const MAX_CALL_COST = 1_000_000_000;

/** Whether a value can be what one request or call is charged: a whole number from 1 to `MAX_CALL_COST`. */
export function isCallCost(cost: unknown): cost is number {
  return Number.isSafeInteger(cost) && (cost as number) >= 1 && (cost as number) <= MAX_CALL_COST;
}
