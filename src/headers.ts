import type { Decision } from "./decision.ts";

/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers) for a
 * decision: `RateLimit-Policy` lists each rule's quota `q` per window `w` seconds,
 * `RateLimit` each rule's remaining `r` and seconds to reset `t`. On a denial,
 * `Retry-After` (RFC 9110 §10.2.3) is the latest time any violated rule allows.
 */
export function formatRateLimitHeaders(decision: Decision): Record<string, string> {
  const headers: Record<string, string> = {
    "RateLimit-Policy": decision.rules.map((rule) => `"${rule.name}";q=${rule.limit};w=${rule.periodSeconds}`).join(", "),
    RateLimit: decision.rules.map((rule) => `"${rule.name}";r=${rule.remaining};t=${rule.resetSeconds}`).join(", "),
  };
  if (!decision.allowed) headers["Retry-After"] = String(retryAfterSeconds(decision));
  return headers;
}

/** Seconds until every violated rule would admit the request again (at least 1). */
export function retryAfterSeconds(decision: Decision): number {
  return Math.max(1, ...decision.rules.filter((rule) => !rule.allowed).map((rule) => rule.retryAfterSeconds));
}
