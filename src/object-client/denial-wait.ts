/**
 * How long a denial holds, and how it reads later: what the isolate's caches of denials (the middleware's per client,
 * `PartDenials` per shared object) answer with (docs/architecture.md, invariant 5).
 */

import type { Decision } from "../object/protocol.ts";

/** How long a denial holds: until every violated enforcing rule could admit again. 0 when it must not be cached. */
export function cacheableWaitMs(decision: Decision): number {
  if (decision.allowed || decision.degraded || decision.refundsPending) return 0;
  const violated = decision.rules.filter((rule) => rule.mode === "enforce" && !rule.allowed);
  if (violated.length === 0 || violated.some((rule) => rule.degraded)) return 0;
  // Until the latest of them, that rule still denies: its retryAfterMs is never later than it could admit.
  if (violated.some((rule) => rule.retryAfterMs <= 0)) return 0;
  return Math.max(...violated.map((rule) => rule.retryAfterMs));
}

/** A cached decision as it stands `elapsedMs` later: the same verdicts, with the waits shortened. */
export function agedDecision(decision: Decision, elapsedMs: number): Decision {
  const elapsedSeconds = Math.floor(elapsedMs / 1000);
  return {
    ...decision,
    rules: decision.rules.map((rule) => ({
      ...rule,
      retryAfterMs: Math.max(0, rule.retryAfterMs - elapsedMs),
      retryAfterSeconds: rule.allowed ? 0 : Math.max(1, Math.ceil(Math.max(0, rule.retryAfterMs - elapsedMs) / 1000)),
      resetSeconds: Math.max(0, rule.resetSeconds - elapsedSeconds),
    })),
  };
}
