/** What `limit()` answers: the limiter's `Decision`, widened with the flat summary other limiters give. */

import { formatRateLimitHeaders } from "../http/rate-limit-headers.ts";
import type { Decision, RuleVerdict } from "../object/protocol.ts";
import type { Policy } from "../policy/types.ts";

/** Why a call was decided without counting: the policy's lists. */
export type ListedReason = "allow-listed" | "deny-listed";

/**
 * The decision on one `limit()` call: every rule's verdict (`rules`, as the middleware's `Decision`), and for the most
 * restrictive rule the summary Upstash, Unkey and Cloudflare's binding give.
 */
export interface LimitResult extends Decision {
  /** Whether the call is admitted: the same as `allowed` (Cloudflare's binding and Upstash call it so). */
  success: boolean;
  /** The most restrictive rule's limit per period; 0 when no rule applied. */
  limit: number;
  /** What the most restrictive rule has left after this call; 0 when no rule applied. */
  remaining: number;
  /** When the most restrictive rule is back to its full budget, in epoch ms (`nowMs` when no rule applied). */
  reset: number;
  /** How long until the call could be admitted, in ms: 0 when admitted; exact for a denial (the latest violated rule's). */
  retryAfterMs: number;
  /** The headers the middleware would send with this decision: RateLimit, RateLimit-Policy and, for a denial, Retry-After. */
  headers: Record<string, string>;
  /** Set when the policy's lists decided the call rather than its rules. */
  reason?: ListedReason;
}

/** The rule closest to denying: among enforcing rules (shadow ones when none enforces), fewest remaining, then the longest to reset. */
function tightestOf(rules: readonly RuleVerdict[]): RuleVerdict | undefined {
  let tightest: RuleVerdict | undefined;
  const enforcing = rules.some((rule) => rule.mode === "enforce" && !rule.degraded);
  for (const rule of rules) {
    if (rule.degraded || (enforcing && rule.mode !== "enforce")) continue;
    if (
      !tightest ||
      rule.remaining < tightest.remaining ||
      (rule.remaining === tightest.remaining && rule.resetSeconds > tightest.resetSeconds)
    )
      tightest = rule;
  }
  return tightest;
}

/** A decision as `limit()` answers it, at `nowMs`. */
export function limitResultOf(decision: Decision, nowMs: number, policy: Pick<Policy, "legacyHeaders">): LimitResult {
  const tightest = tightestOf(decision.rules);
  const violated = decision.rules.filter((rule) => rule.mode === "enforce" && !rule.allowed);
  return {
    ...decision,
    success: decision.allowed,
    limit: tightest?.limit ?? 0,
    remaining: tightest?.remaining ?? 0,
    reset: nowMs + (tightest?.resetSeconds ?? 0) * 1000,
    retryAfterMs: decision.allowed ? 0 : Math.max(0, ...violated.map((rule) => rule.retryAfterMs)),
    // Built when first read: most callers want only `success` (bench/README.md, hot-admitted-core).
    get headers() {
      const headers = decision.rules.length === 0 ? {} : formatRateLimitHeaders(decision, policy);
      Object.defineProperty(this, "headers", { value: headers, enumerable: true });
      return headers;
    },
  };
}

/** The answer to a call the policy's lists decided: admitted with no rule counted, or denied. */
export function listedResult(reason: ListedReason, nowMs: number): LimitResult {
  const allowed = reason === "allow-listed";
  return { allowed, success: allowed, rules: [], limit: 0, remaining: 0, reset: nowMs, retryAfterMs: 0, headers: {}, reason };
}
