/** How a client's penalty boxes (`PenaltyBox`) bear on one decision: which rules are blocked, and what a denial strikes. */

import { algorithmFor } from "../limiter/registry.ts";
import type { Outcome, RuleDecision } from "../limiter/types.ts";
import type { Bucket } from "./bucket.ts";
import type { PenaltyBox } from "./penalty-box.ts";
import type { ObjectRule, RuleVerdict } from "./protocol.ts";

/** One rule's bucket and its outcome for a request, as `ClientState` decides it. */
export interface RuleOutcome {
  rule: ObjectRule;
  bucket: Bucket;
  outcome: Outcome<unknown>;
}

/** What a denial struck: whether it counted towards a block, and whether it started one (which must be stored). */
export interface Strike {
  counted: boolean;
  blockStarted: boolean;
}

/** The enforcing rules that are blocked at `nowMs`, each with when its block ends; undefined when none is. */
export function blocksOf(penalties: PenaltyBox, rules: readonly ObjectRule[], nowMs: number): Map<string, number> | undefined {
  let blocks: Map<string, number> | undefined;
  for (const rule of rules) {
    const untilMs = rule.mode === "enforce" ? penalties.blockedUntilMs(rule.name, nowMs) : 0;
    if (untilMs === 0) continue;
    blocks ??= new Map();
    blocks.set(rule.name, untilMs);
  }
  return blocks;
}

/**
 * Counts a denial against each rule with a ladder that denied it itself, unless only charges still held denied it
 * (attempts in flight that may yet be refunded are no exhaustion): whether it counted one, and started a block.
 */
export function strikeDenial(
  penalties: PenaltyBox,
  outcomes: readonly RuleOutcome[],
  blocks: Map<string, number> | undefined,
  heldUnitsOf: (rule: string) => number,
  nowMs: number,
): Strike {
  let counted = false;
  let blockStarted = false;
  for (const { rule, bucket, outcome } of outcomes) {
    if (!rule.block || rule.mode !== "enforce" || outcome.decision.allowed || blocks?.has(rule.name)) continue;
    const held = heldUnitsOf(rule.name);
    const leasing = algorithmFor(bucket.algorithm).leasing;
    if (held > 0 && leasing) {
      const unheld = leasing.credit(bucket.state, bucket.limits, nowMs, held);
      if (algorithmFor(bucket.algorithm).decide(unheld, bucket.limits, nowMs, rule.cost).decision.allowed) continue;
    }
    counted = true;
    if (penalties.strike(rule.name, rule.block, rule.periodSeconds, nowMs) > 0) blockStarted = true;
  }
  return { counted, blockStarted };
}

/** What an admitted request strikes: nothing. */
export const NO_STRIKE: Strike = Object.freeze({ counted: false, blockStarted: false });

/** A blocked rule's verdict: denied until its block ends, with nothing left, whatever its bucket holds. */
export function blockedVerdict(rule: ObjectRule, blockedUntilMs: number, decision: RuleDecision, nowMs: number): RuleVerdict {
  const waitMs = blockedUntilMs - nowMs;
  return {
    ...decision,
    allowed: false,
    remaining: 0,
    retryAfterMs: waitMs,
    retryAfterSeconds: Math.ceil(waitMs / 1000),
    resetSeconds: Math.max(decision.resetSeconds, Math.ceil(waitMs / 1000)),
    name: rule.name,
    periodSeconds: rule.periodSeconds,
    mode: rule.mode,
    blocked: true,
  };
}
