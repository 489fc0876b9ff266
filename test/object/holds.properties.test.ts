import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClientState } from "../../src/object/client-state.ts";
import type { DecisionRequest, ObjectRule } from "../../src/object/protocol.ts";
import { leasingRule } from "../leasing-rules.ts";

const T0 = Date.UTC(2030, 0, 1);
/** The algorithms that hold (docs/configuration.md, Holds). */

/**
 * What a key consumed, as the bound is stated for holds: each admission at its time, at the smaller of what it was
 * charged and what it settled at (a refund is as if it had cost that much from the start), and what a settlement
 * charged above the hold at the settlement's time (the bucket owes it).
 */
interface Consumption {
  atMs: number;
  cost: number;
  /** An admission, rather than a settlement's excess. */
  admitted: boolean;
}

/**
 * The bound with settlements: every interval that ends with an admission consumed no more than the rule allows (a
 * token bucket's burst + rate × t; a fixed window's limit in each window, up to each admission in it). A settlement
 * above its hold may take the bucket below empty, but the next admission waits until it has refilled that.
 */
function checkBound(consumed: Consumption[], rule: ObjectRule): void {
  const periodMs = rule.periodSeconds * 1000;
  for (let j = 0; j < consumed.length; j++) {
    const end = consumed[j] as Consumption;
    if (!end.admitted) continue;
    if (rule.algorithm === "fixed-window") {
      const window = Math.floor(end.atMs / periodMs);
      const spent = consumed.slice(0, j + 1).filter((each) => Math.floor(each.atMs / periodMs) === window);
      expect(spent.reduce((sum, each) => sum + each.cost, 0)).toBeLessThanOrEqual(rule.limit);
      continue;
    }
    let total = 0;
    for (let i = j; i >= 0; i--) {
      const start = consumed[i] as Consumption;
      total += start.cost;
      expect(total * periodMs).toBeLessThanOrEqual(rule.burst * periodMs + rule.limit * (end.atMs - start.atMs));
    }
  }
}

const rule = leasingRule("held", { limit: { min: 2, max: 20 }, periodSeconds: { min: 1, max: 10 }, extra: { min: 0, max: 10 } });

/** A call held at an estimate, a settlement of the oldest or newest hold at a share of it (up to twice), or time. */
const step = fc.oneof(
  fc.record({ kind: fc.constant("admit" as const), estimate: fc.integer({ min: 1, max: 4 }) }),
  fc.record({
    kind: fc.constant("settle" as const),
    newest: fc.boolean(),
    // In quarters of the estimate: 0 refunds it, 4 keeps it, 8 charges twice as much.
    quarters: fc.integer({ min: 0, max: 8 }),
  }),
  fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 3000 }) }),
);

describe("holds settled above or below what they held, against the stated bound", () => {
  it("consumes within each rule's bound in every interval that ends with an admission, and lets the bucket owe", () => {
    fc.assert(
      fc.property(rule, fc.array(step, { maxLength: 120 }), (heldRule, steps) => {
        const state = new ClientState();
        const consumed: Consumption[] = [];
        const pending: Array<{ holdId: string; estimate: number; index: number }> = [];
        let nowMs = T0;
        for (const each of steps) {
          if (each.kind === "wait") {
            nowMs += each.ms;
          } else if (each.kind === "admit") {
            const estimate = Math.min(each.estimate, heldRule.burst);
            const request: DecisionRequest = {
              rules: [{ ...heldRule, cost: estimate }],
              idleRetentionSeconds: 60,
              hold: { ttlMs: 3_600_000 },
            };
            const { result } = state.decide(request, nowMs);
            if (!result.allowed) continue;
            expect(result.holdId).toBeDefined();
            pending.push({ holdId: result.holdId as string, estimate, index: consumed.length });
            consumed.push({ atMs: nowMs, cost: estimate, admitted: true });
          } else {
            const settled = each.newest ? pending.pop() : pending.shift();
            if (!settled) continue;
            const cost = Math.round((settled.estimate * each.quarters) / 4);
            expect(state.settleHold(settled.holdId, { successful: true, cost }, nowMs)).toBe(true);
            const admission = consumed[settled.index] as Consumption;
            admission.cost = Math.min(cost, settled.estimate);
            if (cost > settled.estimate) consumed.push({ atMs: nowMs, cost: cost - settled.estimate, admitted: false });
          }
        }
        checkBound(consumed, heldRule);
      }),
      { numRuns: 300, seed: 24 },
    );
  });
});
