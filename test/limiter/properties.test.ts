import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AlgorithmName, algorithmFor } from "../../src/limiter/registry.ts";
import { type Reservation, reserveAhead, spendReserved } from "../../src/limiter/reservation.ts";
import type { RuleLimits } from "../../src/limiter/types.ts";
import { type Admission, bounds } from "../history-checker.ts";

const T0 = 1_700_000_000_000;

const names = Object.keys(bounds) as AlgorithmName[];
const withBurst = new Set<AlgorithmName>(["token-bucket", "gcra", "leaky-bucket"]);

const limitsFor = (name: AlgorithmName) =>
  fc
    .record({
      limit: fc.integer({ min: 1, max: 200 }),
      periodSeconds: fc.integer({ min: 1, max: 120 }),
      extra: fc.integer({ min: 0, max: 200 }),
    })
    .map(({ limit, periodSeconds, extra }): RuleLimits => ({ limit, periodSeconds, burst: withBurst.has(name) ? limit + extra : limit }));

// The object hands algorithms a non-decreasing clock, so gaps are >= 0.
const steps = fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 5_000 }), cost: fc.integer({ min: 1, max: 20 }) }), { maxLength: 150 });

describe.each(names)("%s", (name) => {
  const algorithm = algorithmFor(name);

  function run(limits: RuleLimits, sequence: Array<{ gapMs: number; cost: number }>) {
    let state = algorithm.initialState(limits, T0);
    let clockMs = T0;
    const admitted: Admission[] = [];
    const trace: Array<{ before: unknown; after: unknown; atMs: number; cost: number; allowed: boolean; retryAfterSeconds: number }> = [];
    for (const { gapMs, cost } of sequence) {
      clockMs += gapMs;
      const { decision, state: after } = algorithm.decide(state, limits, clockMs, cost);
      trace.push({ before: state, after, atMs: clockMs, cost, allowed: decision.allowed, retryAfterSeconds: decision.retryAfterSeconds });
      if (decision.allowed) admitted.push({ atMs: clockMs, cost });
      state = after;
    }
    return { admitted, trace, state, clockMs };
  }

  it("never admits more than its stated bound", () => {
    fc.assert(
      fc.property(limitsFor(name), steps, (limits, sequence) => {
        bounds[name](run(limits, sequence).admitted, limits);
      }),
      { numRuns: 200 },
    );
  });

  it("leaves the state untouched when it denies", () => {
    fc.assert(
      fc.property(limitsFor(name), steps, (limits, sequence) => {
        for (const step of run(limits, sequence).trace) if (!step.allowed) expect(step.after).toBe(step.before);
      }),
      { numRuns: 200 },
    );
  });

  it("is never more generous to a time earlier than the latest it has seen", () => {
    fc.assert(
      fc.property(
        limitsFor(name),
        steps,
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 20 }),
        (limits, sequence, backMs, cost) => {
          const { state, clockMs } = run(limits, sequence);
          const now = algorithm.decide(state, limits, clockMs, cost).decision;
          const earlier = algorithm.decide(state, limits, clockMs - backMs, cost).decision;
          if (!now.allowed) expect(earlier.allowed).toBe(false);
          if (earlier.allowed) expect(earlier.remaining).toBeLessThanOrEqual(now.remaining);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("is full again, like a new client, at fullAtMs", () => {
    fc.assert(
      fc.property(limitsFor(name), steps, (limits, sequence) => {
        const { state } = run(limits, sequence);
        const fullAt = algorithm.fullAtMs(state, limits);
        const fresh = algorithm.decide(algorithm.initialState(limits, fullAt), limits, fullAt, 1).decision;
        expect(algorithm.decide(state, limits, fullAt, 1).decision.remaining).toBe(fresh.remaining);
      }),
      { numRuns: 200 },
    );
  });

  it("denies until its exact retryAfterMs has passed, so a denial may be cached that long", () => {
    fc.assert(
      fc.property(limitsFor(name), steps, (limits, sequence) => {
        const { trace } = run(limits, sequence);
        for (const step of trace.filter((s) => !s.allowed)) {
          const decision = algorithm.decide(step.before, limits, step.atMs, step.cost).decision;
          if (decision.retryAfterMs === 0) continue;
          expect(algorithm.decide(step.before, limits, step.atMs + decision.retryAfterMs - 1, step.cost).decision.allowed).toBe(false);
          expect(decision.retryAfterSeconds).toBe(Math.ceil(decision.retryAfterMs / 1000));
        }
      }),
      { numRuns: 200 },
    );
  });

  if (name !== "sliding-window-counter") {
    it("admits a denied request once its Retry-After has passed", () => {
      fc.assert(
        fc.property(limitsFor(name), steps, (limits, sequence) => {
          const { trace } = run(limits, sequence);
          const denied = trace.filter((step) => !step.allowed && step.cost <= limits.burst);
          for (const step of denied) {
            const later = algorithm.decide(step.before, limits, step.atMs + step.retryAfterSeconds * 1000, step.cost).decision;
            expect(later.allowed).toBe(true);
          }
        }),
        { numRuns: 200 },
      );
    });
  }

  it("with reservations, stores a state that never admits more than memory, and restarts within its bound", () => {
    const events = fc.array(
      fc.record({ gapMs: fc.integer({ min: 0, max: 5_000 }), cost: fc.integer({ min: 1, max: 20 }), restart: fc.boolean() }),
      { maxLength: 150 },
    );
    const probes = fc.array(fc.integer({ min: 0, max: 400_000 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(limitsFor(name), events, probes, (limits, sequence, checks) => {
        // An object: its state in memory, the state it stored, and the units reserved in that state.
        let memory = algorithm.initialState(limits, T0);
        let stored = memory;
        let reservation: Reservation | undefined;
        let clockMs = T0;
        const admitted: Admission[] = [];
        for (const { gapMs, cost, restart } of sequence) {
          clockMs += gapMs;
          if (restart) {
            memory = stored;
            reservation = undefined;
            continue;
          }
          const outcome = algorithm.decide(memory, limits, clockMs, cost);
          if (!outcome.decision.allowed) continue;
          memory = outcome.state;
          admitted.push({ atMs: clockMs, cost });
          if (!spendReserved(reservation, cost, clockMs)) ({ stored, reservation } = reserveAhead(algorithm, memory, limits, clockMs));
          // Storage is never full again before memory (exact to the ms, where whole units left would round), and at
          // any later time it never has more left than memory.
          expect(algorithm.fullAtMs(stored, limits)).toBeGreaterThanOrEqual(algorithm.fullAtMs(memory, limits));
          for (const afterMs of checks) {
            const fromStorage = algorithm.decide(stored, limits, clockMs + afterMs, 0).decision.remaining;
            expect(fromStorage).toBeLessThanOrEqual(algorithm.decide(memory, limits, clockMs + afterMs, 0).decision.remaining);
          }
        }
        bounds[name](admitted, limits);
      }),
      { numRuns: 300 },
    );
  });

  if (withBurst.has(name)) {
    it("gives a state stored ahead of time, as a restart loads it, an exact retryAfterMs too", () => {
      const probes = fc.array(fc.record({ afterMs: fc.integer({ min: 0, max: 20_000 }), cost: fc.integer({ min: 1, max: 20 }) }), {
        minLength: 1,
        maxLength: 5,
      });
      fc.assert(
        fc.property(limitsFor(name), steps, probes, (limits, sequence, checks) => {
          let memory = algorithm.initialState(limits, T0);
          let clockMs = T0;
          for (const { gapMs, cost } of sequence) {
            clockMs += gapMs;
            const outcome = algorithm.decide(memory, limits, clockMs, cost);
            if (!outcome.decision.allowed) continue;
            memory = outcome.state;
            // What a write stores (dated ahead), loaded again at a later time: its denials must hold exactly as long as they say.
            const { stored } = reserveAhead(algorithm, memory, limits, clockMs);
            for (const { afterMs, cost: probeCost } of checks) {
              const atMs = clockMs + afterMs;
              const denied = algorithm.decide(stored, limits, atMs, probeCost).decision;
              if (denied.allowed || denied.retryAfterMs === 0) continue;
              expect(algorithm.decide(stored, limits, atMs + denied.retryAfterMs - 1, probeCost).decision.allowed).toBe(false);
              expect(algorithm.decide(stored, limits, atMs + denied.retryAfterMs, probeCost).decision.allowed).toBe(true);
            }
          }
        }),
        { numRuns: 200 },
      );
    });
  }

  it("covers whatever is spent from a reservation before it ends, even once memory is full again", () => {
    const spends = fc.array(fc.record({ at: fc.double({ min: 0, max: 0.999, noNaN: true }), cost: fc.integer({ min: 1, max: 20 }) }), {
      maxLength: 30,
    });
    // Short periods too, so that a unit refills within milliseconds and timing mistakes of a few ms show.
    const limits = fc.oneof(
      limitsFor(name),
      limitsFor(name).map((l) => ({ ...l, periodSeconds: 1 + (l.periodSeconds % 3) })),
    );
    fc.assert(
      fc.property(limits, fc.integer({ min: 1, max: 20 }), spends, (limits, firstCost, later) => {
        const first = algorithm.decide(algorithm.initialState(limits, T0), limits, T0, firstCost);
        fc.pre(first.decision.allowed);
        let memory = first.state;
        const { stored, reservation } = reserveAhead(algorithm, memory, limits, T0);
        fc.pre(reservation !== undefined);
        const spanMs = (reservation?.untilMs ?? T0) - T0;
        for (const { at, cost } of [...later].sort((a, b) => a.at - b.at)) {
          const atMs = T0 + Math.floor(at * spanMs);
          const outcome = algorithm.decide(memory, limits, atMs, cost);
          if (!outcome.decision.allowed || !spendReserved(reservation, cost, atMs)) continue;
          memory = outcome.state;
          expect(algorithm.fullAtMs(stored, limits)).toBeGreaterThanOrEqual(algorithm.fullAtMs(memory, limits));
        }
      }),
      { numRuns: 1000 },
    );
  });
});
