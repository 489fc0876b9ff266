import type { RuleVerdict } from "../object/protocol.ts";
import type { Rule } from "../policy/types.ts";

/** What each rule's `onError` decides when its object could not answer. */
export function degradedVerdicts(rules: readonly Rule[]): RuleVerdict[] {
  return rules.map((rule) => ({
    name: rule.name,
    mode: rule.mode,
    periodSeconds: rule.periodSeconds,
    limit: rule.limit,
    allowed: rule.onError === "allow",
    remaining: 0,
    resetSeconds: 0,
    retryAfterSeconds: rule.onError === "allow" ? 0 : 1,
    retryAfterMs: 0,
    degraded: true,
  }));
}

/** Whether verdicts admit a request: every enforcing rule does (a shadow rule never blocks). */
export function isAdmitted(verdicts: RuleVerdict[]): boolean {
  return verdicts.every((verdict) => verdict.mode === "shadow" || verdict.allowed);
}
