import type { RuleDecision } from "./limiter/types.ts";

/** One rule's verdict within a decision, with what the headers need to describe it. */
export interface RuleVerdict extends RuleDecision {
  /** The rule's name, as in `RateLimit-Policy`. */
  name: string;
  periodSeconds: number;
}

/** The answer of a client's object for one request: admitted only if every rule admits it. */
export interface Decision {
  allowed: boolean;
  rules: RuleVerdict[];
}
