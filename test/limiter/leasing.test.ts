import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AlgorithmName, algorithmFor } from "../../src/limiter/registry.ts";
import type { RuleLimits } from "../../src/limiter/types.ts";
import { type Admission, bounds } from "../history-checker.ts";

const T0 = 1_700_000_000_000;
const LEASING: AlgorithmName[] = ["token-bucket", "gcra", "leaky-bucket", "fixed-window"];
const WITH_BURST = new Set<AlgorithmName>(["token-bucket", "gcra", "leaky-bucket"]);
const ISOLATES = 3;

const limitsFor = (name: AlgorithmName) =>
  fc
    .record({
      limit: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 100 })),
      periodSeconds: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 60 })),
      extra: fc.integer({ min: 0, max: 50 }),
    })
    .map(({ limit, periodSeconds, extra }): RuleLimits => ({ limit, periodSeconds, burst: WITH_BURST.has(name) ? limit + extra : limit }));

/** What happens, one step at a time, to one bucket and the leases of three isolates. Time only moves forward. */
const step = fc.record({
  gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_500 })),
  isolate: fc.integer({ min: 0, max: ISOLATES - 1 }),
  action: fc.constantFrom("object", "grant", "spend", "spend", "spend", "give-back"),
  units: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 60 })),
  lifetimeMs: fc.integer({ min: 1, max: 3_000 }),
});

type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

interface Lease {
  granted: number;
  unspent: number;
  expiresAtMs: number;
}

/** Mistakes a leasing object could make, each of which must break the bound. */
type Mistake = "none" | "refill-to-full-capacity" | "spend-after-expiry";

describe.each(LEASING)("%s, lending units to isolates", (name) => {
  const algorithm = algorithmFor(name);
  const leasing = algorithm.leasing;
  if (!leasing) throw new Error(`${name} cannot lease`);
  const periodMsOf = (limits: RuleLimits) => limits.periodSeconds * 1000;

  /** Every admission, by the object or from a lease, in a random run of grants, spends, give-backs and expiries. */
  function run(limits: RuleLimits, steps: Step[], mistake: Mistake): Admission[] {
    let state = algorithm.initialState(limits, T0);
    let nowMs = T0;
    const leases: Array<Lease | undefined> = Array.from({ length: ISOLATES }, () => undefined);
    const admitted: Admission[] = [];
    const lent = () => (mistake === "refill-to-full-capacity" ? 0 : leases.reduce((sum, lease) => sum + (lease?.granted ?? 0), 0));

    /** The object's side of time passing: each lease that expired ends at its own moment, its unspent units lost. */
    function settle(): void {
      for (const lease of [...leases].filter((l): l is Lease => l !== undefined).sort((a, b) => a.expiresAtMs - b.expiresAtMs)) {
        if (lease.expiresAtMs > nowMs) break;
        state = leasing?.advance(state, limits, lease.expiresAtMs, lent()) ?? state;
        if (mistake !== "spend-after-expiry") leases[leases.indexOf(lease)] = undefined;
        else lease.granted = 0; // the object forgets it; the isolate goes on spending
      }
      state = leasing?.advance(state, limits, nowMs, lent()) ?? state;
    }

    for (const { gapMs, isolate, action, units, lifetimeMs } of steps) {
      nowMs += gapMs;
      const lease = leases[isolate];
      if (action === "spend") {
        // The isolate admits a flood of `units` requests from its lease, without the object, while the lease
        // lasts and covers them.
        const usable = lease && (mistake === "spend-after-expiry" || nowMs < lease.expiresAtMs);
        for (let i = 0; lease && usable && i < units && lease.unspent > 0; i++) {
          lease.unspent -= 1;
          admitted.push({ atMs: nowMs, cost: 1 });
        }
        continue;
      }
      settle();
      if (action === "object") {
        // A flood of `units` requests the object decides itself.
        for (let i = 0; i < units; i++) {
          const outcome = algorithm.decide(state, limits, nowMs, 1);
          if (outcome.decision.allowed) admitted.push({ atMs: nowMs, cost: 1 });
          state = outcome.state;
        }
      } else if (action === "grant" && lease === undefined) {
        const outcome = algorithm.decide(state, limits, nowMs, units);
        if (!outcome.decision.allowed) continue;
        state = outcome.state;
        // A fixed window's lease ends with the window it was charged in.
        const windowEndMs = nowMs - (nowMs % periodMsOf(limits)) + periodMsOf(limits);
        const expiresAtMs = name === "fixed-window" ? Math.min(nowMs + lifetimeMs, windowEndMs) : nowMs + lifetimeMs;
        leases[isolate] = { granted: units, unspent: units, expiresAtMs };
      } else if (action === "give-back" && lease !== undefined && nowMs < lease.expiresAtMs) {
        leases[isolate] = undefined;
        state = leasing?.advance(state, limits, nowMs, lent()) ?? state;
        state = leasing?.credit(state, limits, nowMs, lease.unspent) ?? state;
      }
    }
    return admitted;
  }

  it("never admits more than its bound, counting what the isolates admit from their leases", () => {
    fc.assert(
      fc.property(limitsFor(name), fc.array(step, { maxLength: 150 }), (limits, steps) => {
        bounds[name](run(limits, steps, "none"), limits);
      }),
      { numRuns: 400 },
    );
  });

  it.each<Mistake>(WITH_BURST.has(name) ? ["refill-to-full-capacity", "spend-after-expiry"] : ["spend-after-expiry"])(
    "breaks its bound with a leasing mistake: %s",
    (mistake) => {
      expect(() =>
        fc.assert(
          fc.property(limitsFor(name), fc.array(step, { maxLength: 150 }), (limits, steps) => {
            bounds[name](run(limits, steps, mistake), limits);
          }),
          // Seeded, so that it is deterministic; it stops at the first run that breaks the bound, within a few hundred.
          { numRuns: 5_000, seed: 1 },
        ),
      ).toThrow();
    },
  );
});
