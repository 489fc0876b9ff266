import type { Decision, RuleVerdict } from "../object/protocol.ts";

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
  // One pass, no intermediate arrays: this runs for every admitted request.
  let policyField = "";
  let rateLimitField = "";
  let degradedField = "";
  let tightestEnforcing: RuleVerdict | undefined;
  let tightestShadow: RuleVerdict | undefined;
  for (const rule of decision.rules) {
    policyField = listed(policyField, `"${rule.name}";q=${rule.limit};w=${rule.periodSeconds}`);
    if (rule.degraded) {
      degradedField = listed(degradedField, `"${rule.name}"`);
      continue;
    }
    rateLimitField = listed(rateLimitField, `"${rule.name}";r=${rule.remaining};t=${rule.resetSeconds}`);
    if (rule.mode === "enforce") tightestEnforcing = tighter(tightestEnforcing, rule);
    else tightestShadow = tighter(tightestShadow, rule);
  }
  const headers: Record<string, string> = { "RateLimit-Policy": policyField };
  if (rateLimitField !== "") headers.RateLimit = rateLimitField;
  if (degradedField !== "") headers["X-RateLimit-Degraded"] = degradedField;
  // The most restrictive rule that enforces, or of the shadow rules when none does.
  const tightest = tightestEnforcing ?? tightestShadow;
  if ((options.legacyHeaders ?? true) && tightest) {
    headers["X-RateLimit-Limit"] = String(tightest.limit);
    headers["X-RateLimit-Remaining"] = String(tightest.remaining);
    headers["X-RateLimit-Reset"] = String(tightest.resetSeconds);
  }
  if (!decision.allowed) headers["Retry-After"] = String(retryAfterSeconds(decision));
  return headers;
}

/** A header's list of items with one more. */
function listed(field: string, item: string): string {
  return field === "" ? item : `${field}, ${item}`;
}

/** The rule closer to denying: fewer remaining, then the longer to reset; the earlier one on a tie. */
function tighter(tightest: RuleVerdict | undefined, rule: RuleVerdict): RuleVerdict {
  if (!tightest) return rule;
  if (rule.remaining !== tightest.remaining) return rule.remaining < tightest.remaining ? rule : tightest;
  return rule.resetSeconds > tightest.resetSeconds ? rule : tightest;
}

/** The enforcing rules that denied the request. */
export function violatedRules(decision: Decision): RuleVerdict[] {
  return decision.rules.filter((rule) => rule.mode === "enforce" && !rule.allowed);
}

/** Seconds until every violated rule would admit the request again (at least 1). */
export function retryAfterSeconds(decision: Decision): number {
  return Math.max(1, ...violatedRules(decision).map((rule) => rule.retryAfterSeconds));
}
