import fc from "fast-check";
import { describe, it } from "vitest";
import { type AlgorithmName, algorithmNames } from "../../src/limiter/registry.ts";
import { ClientState, type StoredClient } from "../../src/object/client-state.ts";
import type { DecisionRequest, ObjectDecision, ObjectRule } from "../../src/object/protocol.ts";
import { type Admission, bounds } from "../history-checker.ts";

const T0 = Date.UTC(2030, 0, 1);
const WITH_BURST = new Set<AlgorithmName>(["token-bucket", "gcra", "leaky-bucket"]);

/** One or two rules, as a policy could hold them. Short periods, so that refills, cleanups and restarts interleave. */
const rules = fc
  .uniqueArray(
    fc.record({
      algorithm: fc.constantFrom(...algorithmNames),
      limit: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 100 })),
      periodSeconds: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 20 })),
      extra: fc.integer({ min: 0, max: 50 }),
      cost: fc.integer({ min: 1, max: 3 }),
    }),
    { minLength: 1, maxLength: 2, selector: (rule) => rule.algorithm },
  )
  .map((specs) =>
    specs.map(
      ({ algorithm, limit, periodSeconds, extra, cost }, index): ObjectRule => ({
        name: `rule-${index}`,
        algorithm,
        limit,
        periodSeconds,
        burst: WITH_BURST.has(algorithm) ? limit + extra : limit,
        cost: Math.min(cost, limit),
        mode: "enforce",
        onError: "allow",
        scope: "client",
      }),
    ),
  );

/** What happens to the object, one step at a time; time only moves forward, as the object's clock does. */
const step = fc.oneof(
  // Requests come alone or in floods at one instant, which drain a bucket before it refills.
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("request" as const),
      gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2_000 })),
      count: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 40 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("restart" as const), gapMs: fc.integer({ min: 0, max: 2_000 }) }) },
  // Often soon after a request, when a wrong cleanup would still find the client refilling; sometimes much later.
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("alarm" as const),
      gapMs: fc.oneof(fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 30_000 })),
    }),
  },
);

/** A client's object as these tests run it: its state in memory, and what its storage holds (undefined once deleted). */
class SimulatedObject {
  state = new ClientState();
  stored: StoredClient | undefined;

  /** Eviction, a crash or a deploy: memory is lost, the object starts again from storage. */
  restart(): void {
    this.state = new ClientState(this.stored);
  }

  /** Cleanup, which may run at any moment: whatever it deletes must be indistinguishable from a new client. */
  cleanUp(nowMs: number): void {
    if (!this.state.isLikeNew(nowMs)) return;
    this.state.forget();
    this.stored = undefined;
  }

  /** One request decided; a reply leaves only once the state that covers it is stored (docs/architecture.md, invariant 3). */
  decide(request: DecisionRequest, nowMs: number): ObjectDecision {
    const { result, needsWrite } = this.state.decide(request, nowMs);
    if (needsWrite) this.stored = this.state.toStored(nowMs);
    return result;
  }
}

describe("a client's object, with restarts and cleanup at any time", () => {
  it("never admits more than each rule's bound, over every interval of its history", () => {
    fc.assert(
      fc.property(rules, fc.array(step, { maxLength: 200 }), fc.boolean(), (ruleList, steps, reservations) => {
        const request: DecisionRequest = { rules: ruleList, idleRetentionSeconds: 0, reservations };
        const object = new SimulatedObject();
        let nowMs = T0;
        const admitted = new Map<string, Admission[]>(ruleList.map((rule) => [rule.name, []]));
        for (const next of steps) {
          const { kind } = next;
          nowMs += next.gapMs;
          if (kind === "restart") object.restart();
          else if (kind === "alarm") object.cleanUp(nowMs);
          else {
            for (let i = 0; i < ("count" in next ? next.count : 1); i++) {
              if (object.decide(request, nowMs).allowed)
                for (const rule of ruleList) admitted.get(rule.name)?.push({ atMs: nowMs, cost: rule.cost });
            }
          }
        }
        for (const rule of ruleList) bounds[rule.algorithm](admitted.get(rule.name) ?? [], rule);
      }),
      { numRuns: 1000 },
    );
  });
});

/**
 * What happens with leases: three isolates ask for them, spend them in floods, give them back; restarts and cleanup
 * too. Some requests are provisional, as when a global rule follows, and some of those are refunded later.
 */
const leaseStep = fc.record({
  kind: fc.constantFrom(
    "decide",
    "decide",
    "decide",
    "spend",
    "spend",
    "spend",
    "give-back",
    "restart",
    "restart",
    "alarm",
    "alarm",
    "refund",
  ),
  provisional: fc.boolean(),
  refunded: fc.nat(),
  // Long gaps and long leases too, so that buckets refill to what the leases leave of them while isolates still hold some.
  gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_500 }), fc.integer({ min: 0, max: 20_000 })),
  isolate: fc.integer({ min: 0, max: 2 }),
  count: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 40 })),
  ask: fc.record({
    requests: fc.integer({ min: 1, max: 60 }),
    lifetimeMs: fc.oneof(fc.integer({ min: 1, max: 3_000 }), fc.integer({ min: 1, max: 60_000 })),
  }),
});

/** A lease as an isolate holds it: it stops spending at its deadline, counted from when it sent the request. */
interface HeldLease {
  id: string;
  unspent: number;
  deadlineMs: number;
}

describe("a client's object granting leases to several isolates, with restarts and cleanup at any time", () => {
  it("never admits more than each rule's bound, counting every admission made from a lease", () => {
    fc.assert(
      fc.property(rules, fc.array(leaseStep, { maxLength: 200 }), (ruleList, steps) => {
        const object = new SimulatedObject();
        let nowMs = T0;
        const held: Array<HeldLease | undefined> = [undefined, undefined, undefined];
        const givenBack: Array<DecisionRequest["givenBack"]> = [undefined, undefined, undefined];
        const admitted = new Map<string, Admission[]>(ruleList.map((rule) => [rule.name, []]));
        const admit = (): Admission[] =>
          ruleList.map((rule) => {
            const admission = { atMs: nowMs, cost: rule.cost };
            admitted.get(rule.name)?.push(admission);
            return admission;
          });
        // Provisional charges not refunded yet, with the admissions they made.
        const refundable: Array<{ chargeId: string; admissions: Admission[] }> = [];
        for (const { kind, provisional, refunded, gapMs, isolate, count, ask } of steps) {
          nowMs += gapMs;
          const lease = held[isolate];
          if (kind === "refund") {
            // A refund the object accepts undoes the admission: the request was never admitted.
            const [charge] = refundable.splice(refunded % Math.max(1, refundable.length), 1);
            if (charge && object.state.refund(charge.chargeId, nowMs)) {
              for (const [index, rule] of ruleList.entries()) {
                const history = admitted.get(rule.name) ?? [];
                history.splice(history.indexOf(charge.admissions[index] as Admission), 1);
              }
            }
          } else if (kind === "restart") object.restart();
          else if (kind === "alarm") object.cleanUp(nowMs);
          else if (kind === "spend") {
            for (let i = 0; lease && nowMs < lease.deadlineMs && lease.unspent > 0 && i < count; i++) {
              lease.unspent--;
              admit();
            }
          } else if (kind === "give-back") {
            if (lease && nowMs < lease.deadlineMs) givenBack[isolate] = [{ id: lease.id, unspentRequests: lease.unspent }];
            held[isolate] = undefined;
          } else {
            // A flood of the isolate's requests that its lease does not cover: the first carries what it gives
            // back, and each asks for a lease while it holds none that still lasts.
            for (let i = 0; i < count; i++) {
              const current = held[isolate];
              if (current && nowMs >= current.deadlineMs) held[isolate] = undefined;
              const request: DecisionRequest = {
                rules: ruleList,
                idleRetentionSeconds: 0,
                ...(held[isolate] ? {} : { lease: ask }),
                ...(givenBack[isolate] ? { givenBack: givenBack[isolate] } : {}),
                ...(provisional ? { provisional } : {}),
              };
              givenBack[isolate] = undefined;
              const result = object.decide(request, nowMs);
              if (result.allowed) {
                const admissions = admit();
                if (result.chargeId !== undefined) refundable.push({ chargeId: result.chargeId, admissions });
              }
              if (result.lease)
                held[isolate] = { id: result.lease.id, unspent: result.lease.requests, deadlineMs: nowMs + result.lease.lifetimeMs };
            }
          }
        }
        for (const rule of ruleList) bounds[rule.algorithm](admitted.get(rule.name) ?? [], rule);
      }),
      { numRuns: 1000 },
    );
  });
});
