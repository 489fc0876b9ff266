import type { RuleDecision } from "../limiter/types.ts";

/** One rule's verdict within a decision, with what the headers need to describe it. */
export interface RuleVerdict extends RuleDecision {
  /** The rule's name, as in `RateLimit-Policy`. */
  name: string;
  periodSeconds: number;
  /** A shadow rule is reported but never blocks. */
  mode: "enforce" | "shadow";
  /** Set when the rule's object could not answer and its onError decided. */
  degraded?: boolean;
}

/** The answer of a client's object for one request: admitted only if every rule admits it. */
export interface Decision {
  allowed: boolean;
  rules: RuleVerdict[];
  /** Set when an object could not answer and the rules' onError decided instead. */
  degraded?: boolean;
}
