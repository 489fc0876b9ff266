import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { algorithmFor } from "../../src/limiter/registry.ts";
import { freshBucket, limitsOf } from "../../src/object/bucket.ts";
import { ClientState } from "../../src/object/client-state.ts";
import type { DecisionRequest, ObjectRule } from "../../src/object/protocol.ts";
import { type Admission, bounds } from "../history-checker.ts";
import { leasingRule } from "../leasing-rules.ts";

/**
 * docs/architecture.md, invariant 1 both ways, for leases: a lease's give-back says when its requests were spent
 * (`LeaseReturn.spent`), and the object counts each from then. Whatever the spends' times, and whatever the object
 * decides meanwhile, the rule stays within its bound; and once the lease is back, the bucket holds exactly what the
 * rule would hold had every admission, the lease's too, been decided by the object when it was made.
 */

const T0 = Date.UTC(2030, 0, 1);

/** Every algorithm that leases: a replay of the admissions recomputes its state exactly (a fixed window's is its count). */
const ruleArbitrary = leasingRule("api", { limit: { min: 4, max: 40 }, periodSeconds: { min: 1, max: 4 }, extra: { min: 0, max: 20 } });

/** One round: a grant, the lease's spends and the object's own requests at moments within it, then the give-back. */
const roundArbitrary = fc.record({
  gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5_000 })),
  lifetimeMs: fc.integer({ min: 200, max: 3_000 }),
  // Each a share of the lease's time: a spend of the lease's (by the isolate), or a request the object decides.
  events: fc.array(fc.record({ atShare: fc.double({ min: 0, max: 0.89, noNaN: true }), byLease: fc.boolean() }), { maxLength: 30 }),
  givenBackAtShare: fc.double({ min: 0.9, max: 1.9, noNaN: true }),
  // Requests the object decides after the give-back, at once: a bucket short of what it should hold denies them.
  flood: fc.integer({ min: 0, max: 40 }),
});

/** What the rule would hold at `nowMs` had the object decided every admission itself, when it was made. */
function idealRemaining(rule: ObjectRule, admissions: readonly Admission[], nowMs: number): number {
  const algorithm = algorithmFor(rule.algorithm);
  let { state } = freshBucket(rule.algorithm, limitsOf(rule), T0, 0);
  for (const { atMs, cost } of admissions) {
    const outcome = algorithm.decide(state, limitsOf(rule), atMs, cost);
    expect(outcome.decision.allowed, "the history itself fits the rule").toBe(true);
    state = outcome.state;
  }
  return algorithm.decide(state, limitsOf(rule), nowMs, 0).decision.remaining;
}

describe("a lease whose give-back says when its requests were spent", () => {
  it("keeps the rule within its bound, and leaves the bucket holding exactly what the spends' own times leave it", () => {
    fc.assert(
      fc.property(ruleArbitrary, fc.array(roundArbitrary, { minLength: 1, maxLength: 4 }), (rule, rounds) => {
        const state = new ClientState();
        const admissions: Admission[] = [];
        const asked = (overrides: Partial<DecisionRequest> = {}): DecisionRequest => ({
          rules: [rule],
          idleRetentionSeconds: 0,
          ...overrides,
        });
        const decideAt = (atMs: number, overrides?: Partial<DecisionRequest>) => {
          const made = state.decide(asked(overrides), atMs).result;
          if (made.allowed) admissions.push({ atMs, cost: 1 });
          return made;
        };
        let nowMs = T0;
        for (const round of rounds) {
          nowMs += round.gapMs;
          const grantedAtMs = nowMs;
          const made = decideAt(nowMs, { lease: { requests: 1_000, lifetimeMs: round.lifetimeMs } });
          if (!made.lease) continue;
          const { id, requests, lifetimeMs } = made.lease;
          let unspent = requests;
          const spent: Array<[number, number]> = [];
          const events = [...round.events].sort((a, b) => a.atShare - b.atShare);
          for (const { atShare, byLease } of events) {
            const atMs = grantedAtMs + Math.floor(atShare * lifetimeMs);
            if (byLease && unspent > 0) {
              unspent--;
              admissions.push({ atMs, cost: 1 });
              const last = spent[spent.length - 1];
              if (last && last[0] === atMs - grantedAtMs) last[1]++;
              else spent.push([atMs - grantedAtMs, 1]);
            } else if (!byLease) decideAt(atMs);
          }
          nowMs = grantedAtMs + Math.max(Math.ceil(round.givenBackAtShare * lifetimeMs), Math.floor(0.89 * lifetimeMs));
          state.giveBack([{ id, unspentRequests: unspent, spent }], nowMs);
          // Nothing out in leases now: the object's bucket is the whole of what the rule holds.
          const remaining = state.inspect(asked(), nowMs).rules[0]?.remaining;
          expect(remaining, "held once the lease is back").toBe(idealRemaining(rule, admissions, nowMs));
          for (let i = 0; i < round.flood; i++) decideAt(nowMs);
        }
        bounds[rule.algorithm](admissions, rule);
      }),
      { numRuns: 500 },
    );
  });
});
