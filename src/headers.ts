import type { Decision, RuleVerdict } from "./decision.ts";

/** Options for the response headers. */
export interface HeaderOptions {
  /** Also send X-RateLimit-Limit, -Remaining and -Reset for the most restrictive rule. @default true */
  legacyHeaders?: boolean;
}

/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers) for a
 * decision: `RateLimit-Policy` lists each rule's quota `q` per window `w` seconds,
 * `RateLimit` each rule's remaining `r` and seconds to reset `t` (every rule, as the
 * draft allows several). On a denial, `Retry-After` (RFC 9110 §10.2.3) is the latest
 * time any violated enforcing rule allows. A rule whose object could not answer is
 * in the policy but not in `RateLimit`, and is named in `X-RateLimit-Degraded`.
 */
export function formatRateLimitHeaders(decision: Decision, options: HeaderOptions = {}): Record<string, string> {
  const known = decision.rules.filter((rule) => !rule.degraded);
  const headers: Record<string, string> = {
    "RateLimit-Policy": decision.rules.map((rule) => `"${rule.name}";q=${rule.limit};w=${rule.periodSeconds}`).join(", "),
  };
  if (known.length > 0) headers.RateLimit = known.map((rule) => `"${rule.name}";r=${rule.remaining};t=${rule.resetSeconds}`).join(", ");
  const degraded = decision.rules.filter((rule) => rule.degraded);
  if (degraded.length > 0) headers["X-RateLimit-Degraded"] = degraded.map((rule) => `"${rule.name}"`).join(", ");
  const tightest = mostRestrictive(known);
  if ((options.legacyHeaders ?? true) && tightest) {
    headers["X-RateLimit-Limit"] = String(tightest.limit);
    headers["X-RateLimit-Remaining"] = String(tightest.remaining);
    headers["X-RateLimit-Reset"] = String(tightest.resetSeconds);
  }
  if (!decision.allowed) headers["Retry-After"] = String(retryAfterSeconds(decision));
  return headers;
}

/** The enforcing rule closest to denying: fewest remaining, then the longest to reset. */
export function mostRestrictive(rules: RuleVerdict[]): RuleVerdict | undefined {
  const enforcing = rules.filter((rule) => rule.mode === "enforce");
  const candidates = enforcing.length > 0 ? enforcing : rules;
  return candidates.reduce<RuleVerdict | undefined>((tightest, rule) => {
    if (!tightest) return rule;
    if (rule.remaining !== tightest.remaining) return rule.remaining < tightest.remaining ? rule : tightest;
    return rule.resetSeconds > tightest.resetSeconds ? rule : tightest;
  }, undefined);
}

/** The enforcing rules that denied the request. */
export function violatedRules(decision: Decision): RuleVerdict[] {
  return decision.rules.filter((rule) => rule.mode === "enforce" && !rule.allowed);
}

/** Seconds until every violated rule would admit the request again (at least 1). */
export function retryAfterSeconds(decision: Decision): number {
  return Math.max(1, ...violatedRules(decision).map((rule) => rule.retryAfterSeconds));
}
