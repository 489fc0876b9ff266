import type { Decision } from "../object/protocol.ts";
import type { Policy } from "../policy/types.ts";

/** Whether a decision gets a log line under the policy's `logDecisions`. */
export function isLogged(decision: Decision, logDecisions: Policy["logDecisions"]): boolean {
  if (logDecisions === "all") return true;
  if (logDecisions === "none") return false;
  return !decision.allowed || decision.degraded === true || decision.rules.some((rule) => rule.mode === "shadow" && !rule.allowed);
}

/**
 * One JSON line per decision. The client id never holds a raw key (keys are
 * hashed into it); shadow rules that would have denied are listed on their own.
 */
export function decisionLogLine(clientId: string, decision: Decision, cached: boolean): string {
  const shadowDenied = decision.rules.filter((rule) => rule.mode === "shadow" && !rule.allowed).map((rule) => rule.name);
  return JSON.stringify({
    event: "decision",
    clientId,
    allowed: decision.allowed,
    degraded: decision.degraded ?? false,
    ...(cached ? { cached } : {}),
    rules: decision.rules.map((rule) => ({ name: rule.name, allowed: rule.allowed, remaining: rule.remaining })),
    ...(shadowDenied.length > 0 ? { shadowDenied } : {}),
  });
}

/** A cached denial's log line with the count of the requests it answered since it was first logged. */
export function repeatsLogLine(logLine: string, repeats: number): string {
  return `${logLine.slice(0, -1)},"repeats":${repeats}}`;
}
