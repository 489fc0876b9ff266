/** What `limit()` answers: the limiter's `Decision`, widened with the flat summary other limiters give. */

import { formatRateLimitHeaders } from "../http/rate-limit-headers.ts";
import type { Decision, RuleVerdict } from "../object/protocol.ts";
import type { Policy } from "../policy/types.ts";

/** Why a call was decided without counting: the policy's lists, or no rule that applies to it. */
export type ListedReason = "allow-listed" | "deny-listed" | "no-rule-applies";

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
  /**
   * How long until the call could be admitted, in ms: 0 when admitted; for a denial the latest violated rule's exact
   * wait, or 0 when waiting cannot help (deny-listed; a cost above a rule's capacity, that rule's `reason` says so; a
   * rule that failed closed, `degraded`).
   */
  retryAfterMs: number;
  /** The headers the middleware would send with this decision: RateLimit, RateLimit-Policy and, for a denial, Retry-After. */
  headers: Record<string, string>;
  /**
   * Set when no rule counted the call: the policy's lists decided it (`"allow-listed"`, `"deny-listed"`), or none of
   * its rules applies (`"no-rule-applies"`: every rule has a `match` that the call, or its `request`, does not fit).
   */
  reason?: ListedReason;
}

/**
 * The rule the summary describes: for a denial, the violated rule that allows the call last; otherwise the rule
 * closest to denying among enforcing rules (shadow ones when none enforces), fewest remaining, then longest to reset.
 */
function tightestOf(decision: Decision): RuleVerdict | undefined {
  const { rules } = decision;
  if (!decision.allowed) {
    let latest: RuleVerdict | undefined;
    for (const rule of rules)
      if (rule.mode === "enforce" && !rule.allowed && (!latest || rule.retryAfterMs > latest.retryAfterMs)) latest = rule;
    if (latest) return latest;
  }
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

/**
 * A decision as `limit()` answers it: the decision's fields and the summary its own, `headers` built when first read,
 * since most callers read only `success`. A class rather than an object literal with a getter: one shape for every
 * call, which V8 builds far faster (bench/README.md, "The limiter from any code (hot-admitted-core)").
 */
class DecidedCall implements LimitResult {
  readonly allowed: boolean;
  readonly rules: RuleVerdict[];
  readonly degraded?: boolean;
  readonly leased?: boolean;
  readonly hold?: string;
  readonly success: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly reset: number;
  readonly retryAfterMs: number;
  readonly #policy: Pick<Policy, "legacyHeaders">;
  #headers: Record<string, string> | undefined;

  constructor(decision: Decision, nowMs: number, policy: Pick<Policy, "legacyHeaders">) {
    const tightest = tightestOf(decision);
    this.allowed = decision.allowed;
    this.rules = decision.rules;
    if (decision.degraded) this.degraded = true;
    if (decision.leased) this.leased = true;
    if (decision.hold !== undefined) this.hold = decision.hold;
    this.success = decision.allowed;
    this.limit = tightest?.limit ?? 0;
    this.remaining = tightest?.remaining ?? 0;
    this.reset = nowMs + (tightest?.resetSeconds ?? 0) * 1000;
    this.retryAfterMs = decision.allowed ? 0 : latestWaitMs(decision.rules);
    this.#policy = policy;
  }

  get headers(): Record<string, string> {
    this.#headers ??= this.rules.length === 0 ? {} : formatRateLimitHeaders(this, this.#policy);
    return this.#headers;
  }

  /** As a plain object, `headers` included: for `JSON.stringify`, and for an RPC answer (`RateLimitService`). */
  toJSON(): LimitResult {
    return { ...this, headers: this.headers };
  }
}

/** The latest exact wait of the violated enforcing rules; 0 when none has one. */
function latestWaitMs(rules: readonly RuleVerdict[]): number {
  let latest = 0;
  for (const rule of rules) if (rule.mode === "enforce" && !rule.allowed && rule.retryAfterMs > latest) latest = rule.retryAfterMs;
  return latest;
}

/** A decision as `limit()` answers it, at `nowMs`. */
export function limitResultOf(decision: Decision, nowMs: number, policy: Pick<Policy, "legacyHeaders">): LimitResult {
  return new DecidedCall(decision, nowMs, policy);
}

/** The answer to a call no rule counted: admitted (allow-listed, or no rule applies), or denied (deny-listed). */
export function listedResult(reason: ListedReason, nowMs: number): LimitResult {
  const allowed = reason !== "deny-listed";
  return { allowed, success: allowed, rules: [], limit: 0, remaining: 0, reset: nowMs, retryAfterMs: 0, headers: {}, reason };
}
