import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AlgorithmName, algorithmFor, algorithmNames } from "../../src/limiter/registry.ts";
import type { RuleLimits } from "../../src/limiter/types.ts";
import type { Bucket } from "../../src/object/bucket.ts";
import { REFUND_WINDOW_MS, RefundJournal } from "../../src/object/refund-journal.ts";

const T0 = 1_700_000_000_000;

describe("RefundJournal", () => {
  it.each(algorithmNames)("%s: refunding a charge leaves exactly the state as if it had never been made", (name: AlgorithmName) => {
    const algorithm = algorithmFor(name);
    fc.assert(
      fc.property(
        fc.record({ limit: fc.integer({ min: 1, max: 20 }), periodSeconds: fc.integer({ min: 1, max: 10 }) }),
        fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 800 }), cost: fc.integer({ min: 1, max: 3 }), provisional: fc.boolean() }), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.nat(),
        ({ limit, periodSeconds }, steps, pick) => {
          const limits: RuleLimits = { limit, periodSeconds, burst: limit };
          const journal = new RefundJournal();
          let bucket: Bucket = { algorithm: name, limits, state: algorithm.initialState(limits, T0) };
          let nowMs = T0;
          const admitted: Array<{ id: string; atMs: number; cost: number; provisional: boolean }> = [];
          steps.forEach((step, index) => {
            nowMs += step.gapMs;
            const outcome = algorithm.decide(bucket.state, limits, nowMs, step.cost);
            if (!outcome.decision.allowed) return;
            const id = `charge-${index}`;
            const before = new Map([["r", bucket]]);
            bucket = { ...bucket, state: outcome.state };
            if (step.provisional || journal.isActive) {
              journal.trim(nowMs);
              journal.record({ id, atMs: nowMs, charges: [{ rule: "r", cost: step.cost }], provisional: step.provisional }, before);
            }
            admitted.push({ id, atMs: nowMs, cost: step.cost, provisional: step.provisional });
          });
          const refundable = admitted.filter((a) => a.provisional && a.atMs + REFUND_WINDOW_MS > nowMs);
          const target = refundable[pick % Math.max(1, refundable.length)];
          if (!target) return;

          const refunded = journal.refund(target.id, nowMs);
          // Reference: the same admitted charges, from scratch, without the refunded one.
          let expected = algorithm.initialState(limits, T0);
          for (const charge of admitted) {
            if (charge.id === target.id) continue;
            expected = algorithm.decide(expected, limits, charge.atMs, charge.cost).state;
          }
          expect(refunded?.get("r")?.state).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("refuses a refund after the refund window, keeping the charge", () => {
    const limits: RuleLimits = { limit: 5, periodSeconds: 10, burst: 5 };
    const algorithm = algorithmFor("token-bucket");
    const journal = new RefundJournal();
    const bucket: Bucket = { algorithm: "token-bucket", limits, state: algorithm.initialState(limits, T0) };
    journal.record({ id: "late", atMs: T0, charges: [{ rule: "r", cost: 1 }], provisional: true }, new Map([["r", bucket]]));
    expect(journal.refund("late", T0 + REFUND_WINDOW_MS)).toBeUndefined();
    expect(journal.isActive).toBe(false);
  });

  it("refuses an unknown or already refunded charge", () => {
    const limits: RuleLimits = { limit: 5, periodSeconds: 10, burst: 5 };
    const journal = new RefundJournal();
    const bucket: Bucket = { algorithm: "token-bucket", limits, state: algorithmFor("token-bucket").initialState(limits, T0) };
    journal.record({ id: "once", atMs: T0, charges: [{ rule: "r", cost: 1 }], provisional: true }, new Map([["r", bucket]]));
    expect(journal.refund("never", T0)).toBeUndefined();
    expect(journal.refund("once", T0)).toBeDefined();
    expect(journal.refund("once", T0)).toBeUndefined();
  });
});
