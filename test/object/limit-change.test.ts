import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AlgorithmName, algorithmNames } from "../../src/limiter/registry.ts";
import type { RuleLimits } from "../../src/limiter/types.ts";
import { ClientState } from "../../src/object/client-state.ts";
import type { ObjectRule } from "../../src/object/protocol.ts";
import { type Admission, bounds } from "../history-checker.ts";

/** Aligned to the hour, so that every window used here starts at T0. */
const T0 = Date.UTC(2030, 0, 1);
const WITH_BURST = new Set<AlgorithmName>(["token-bucket", "gcra", "leaky-bucket"]);

function ruleOf(algorithm: AlgorithmName, limits: Partial<RuleLimits> & { limit: number }): ObjectRule {
  return {
    name: "changing",
    algorithm,
    periodSeconds: 3600,
    burst: limits.limit,
    cost: 1,
    mode: "enforce",
    onError: "allow",
    scope: "client",
    ...limits,
  };
}

/** Sends `count` requests at `atMs` under `rule`; how many were admitted. */
function admitted(state: ClientState, rule: ObjectRule, count: number, atMs: number): number {
  let admissions = 0;
  for (let i = 0; i < count; i++) if (state.decide({ rules: [rule], idleRetentionSeconds: 60 }, atMs).result.allowed) admissions++;
  return admissions;
}

// A slow rule (per hour) and a fast one (per second): each count below is exact, so too many or too few fails.
const slowAndFast = algorithmNames.flatMap(
  (algorithm) =>
    [
      [algorithm, 3600],
      [algorithm, 1],
    ] as const,
);

describe.each(slowAndFast)("%s per %i s: a rule whose limits change keeps what the client spent", (algorithm, periodSeconds) => {
  it("takes a raised limit at once: 5 spent of 5, then 10 allows exactly 5 more", () => {
    const state = new ClientState();
    expect(admitted(state, ruleOf(algorithm, { limit: 5, periodSeconds }), 6, T0)).toBe(5);
    expect(admitted(state, ruleOf(algorithm, { limit: 10, periodSeconds }), 8, T0 + 1)).toBe(5);
  });

  it("takes a lowered limit at once: 3 spent of 10, then 5 allows exactly 2 more", () => {
    const state = new ClientState();
    expect(admitted(state, ruleOf(algorithm, { limit: 10, periodSeconds }), 3, T0)).toBe(3);
    expect(admitted(state, ruleOf(algorithm, { limit: 5, periodSeconds }), 4, T0 + 1)).toBe(2);
  });

  it("forgets nothing under a limit lowered below what was spent, and gives it back when raised again", () => {
    const state = new ClientState();
    expect(admitted(state, ruleOf(algorithm, { limit: 10, periodSeconds }), 8, T0)).toBe(8);
    expect(admitted(state, ruleOf(algorithm, { limit: 5, periodSeconds }), 3, T0 + 1)).toBe(0);
    expect(admitted(state, ruleOf(algorithm, { limit: 10, periodSeconds }), 3, T0 + 2)).toBe(2);
  });

  it("reports what is left under the new limits, never below 0", () => {
    const state = new ClientState();
    admitted(state, ruleOf(algorithm, { limit: 10, periodSeconds }), 8, T0);
    const report = state.inspect({ rules: [ruleOf(algorithm, { limit: 5, periodSeconds })] }, T0 + 1);
    expect(report.rules[0]).toMatchObject({ limit: 5, remaining: 0 });
  });
});

describe("a refund pending across a change of limits", () => {
  it("is refused, keeping the charge, rather than replayed under the old limits", () => {
    const state = new ClientState();
    const fast = ruleOf("token-bucket", { limit: 10, periodSeconds: 1 });
    const made = state.decide({ rules: [fast], idleRetentionSeconds: 60, provisional: true }, T0).result;
    expect(admitted(state, ruleOf("token-bucket", { limit: 10, periodSeconds: 60 }), 1, T0 + 1)).toBe(1);
    expect(state.refund(made.chargeId as string, T0 + 2)).toBe(false);
    expect(state.inspect({ rules: [ruleOf("token-bucket", { limit: 10, periodSeconds: 60 })] }, T0 + 2).rules[0]?.remaining).toBe(8);
  });
});

describe("a rule whose period or algorithm changes", () => {
  it("token bucket: what was spent under 5 per hour is owed under 5 per minute, refilled at the new rate", () => {
    const state = new ClientState();
    expect(admitted(state, ruleOf("token-bucket", { limit: 5 }), 5, T0)).toBe(5);
    const perMinute = ruleOf("token-bucket", { limit: 5, periodSeconds: 60 });
    expect(admitted(state, perMinute, 1, T0 + 1)).toBe(0);
    // One token per 12 s at the new rate; the 1 ms of old refill before the change rounds up in the client's favour of nothing.
    expect(admitted(state, perMinute, 1, T0 + 12_000)).toBe(0);
    expect(admitted(state, perMinute, 2, T0 + 12_001)).toBe(1);
  });

  it("fixed window: what the current window spent counts in the new window at now, which then ends on its own time", () => {
    const state = new ClientState();
    expect(admitted(state, ruleOf("fixed-window", { limit: 5 }), 5, T0 + 30_000)).toBe(5);
    const perMinute = ruleOf("fixed-window", { limit: 5, periodSeconds: 60 });
    expect(admitted(state, perMinute, 1, T0 + 59_999)).toBe(0);
    expect(admitted(state, perMinute, 6, T0 + 60_000)).toBe(5);
  });

  it("fixed window: a per-minute window's spend counts in the hourly window it overlaps, after the minute too", () => {
    const state = new ClientState();
    expect(admitted(state, ruleOf("fixed-window", { limit: 5, periodSeconds: 60 }), 5, T0 + 30_000)).toBe(5);
    expect(admitted(state, ruleOf("fixed-window", { limit: 5 }), 1, T0 + 61_000)).toBe(0);
  });

  it("keeps what leases hold counted when a lowered capacity is below it: a lease given back never refills past it", () => {
    const state = new ClientState();
    const roomy = ruleOf("token-bucket", { limit: 10, periodSeconds: 10 });
    const lease = state.decide({ rules: [roomy], idleRetentionSeconds: 60, lease: { requests: 5, lifetimeMs: 60_000 } }, T0).result.lease;
    expect(lease).toMatchObject({ requests: 5 });
    // Lowered to 2 per 10 s: 1 spent by the object and 5 leased, of which the isolate spends 3 and gives back 2.
    const lowered = ruleOf("token-bucket", { limit: 2, periodSeconds: 10 });
    expect(admitted(state, lowered, 1, T0 + 1)).toBe(0);
    state.giveBack([{ id: lease?.id as string, unspentRequests: 2 }], T0 + 10_000);
    // 4 spent of a capacity of 2. While the lease was out, the object and the lease together held at most the
    // capacity: the object's level stayed at 2 - 5, and with the 2 given back it is at -1 token, 1 token after 10 s
    // of refill at 2 per 10 s. Refilling the object to 0 while the lease was out would make it 1 by 15 s.
    expect(state.inspect({ rules: [lowered] }, T0 + 10_000).rules[0]?.remaining).toBe(0);
    expect(state.inspect({ rules: [lowered] }, T0 + 19_999).rules[0]?.remaining).toBe(0);
    expect(state.inspect({ rules: [lowered] }, T0 + 20_000).rules[0]?.remaining).toBe(1);
  });

  it("another algorithm: what was spent, in whole requests, is charged to the new one", () => {
    const state = new ClientState();
    expect(admitted(state, ruleOf("token-bucket", { limit: 10 }), 7, T0)).toBe(7);
    expect(admitted(state, ruleOf("sliding-window-log", { limit: 10 }), 5, T0 + 1)).toBe(3);
  });
});

/** Two definitions of one rule, as two Worker versions of a gradual deployment send them, alternating. */
const rollout = fc
  .record({
    algorithm: fc.constantFrom(...algorithmNames),
    limits: fc.array(fc.record({ limit: fc.integer({ min: 1, max: 20 }), extra: fc.integer({ min: 0, max: 10 }) }), {
      minLength: 2,
      maxLength: 2,
    }),
    periods: fc.array(fc.constantFrom(1, 2, 5), { minLength: 2, maxLength: 2 }),
    steps: fc.array(
      fc.record({ version: fc.integer({ min: 0, max: 1 }), gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_500 })) }),
      { maxLength: 200 },
    ),
  })
  .map(({ algorithm, limits, periods, steps }) => {
    // The windows' bounds are stated per period: their two versions share one.
    const samePeriod = !WITH_BURST.has(algorithm);
    const versions = limits.map(({ limit, extra }, index) =>
      ruleOf(algorithm, {
        limit,
        burst: WITH_BURST.has(algorithm) ? limit + extra : limit,
        periodSeconds: samePeriod ? (periods[0] as number) : (periods[index] as number),
      }),
    );
    return { algorithm, versions, steps };
  });

/** The bound both versions together keep: the larger burst (or limit) and the larger rate, over every interval. */
function widestLimits(versions: readonly ObjectRule[]): RuleLimits {
  const [a, b] = versions as [ObjectRule, ObjectRule];
  const periodSeconds = a.periodSeconds === b.periodSeconds ? a.periodSeconds : a.periodSeconds * b.periodSeconds;
  const rate = (rule: ObjectRule) => (rule.limit * periodSeconds) / rule.periodSeconds;
  return { periodSeconds, limit: Math.max(rate(a), rate(b)), burst: Math.max(a.burst, b.burst) };
}

/** Every admission of a client whose requests alternate between the versions; `resetOnChange` is the defect being fixed. */
function runRollout(
  { versions, steps }: { versions: readonly ObjectRule[]; steps: { version: number; gapMs: number }[] },
  resetOnChange = false,
) {
  let state = new ClientState();
  let nowMs = T0;
  let previous: number | undefined;
  const history: Admission[] = [];
  for (const { version, gapMs } of steps) {
    nowMs += gapMs;
    if (resetOnChange && previous !== undefined && previous !== version) state = new ClientState();
    previous = version;
    const rule = versions[version] as ObjectRule;
    if (state.decide({ rules: [rule], idleRetentionSeconds: 60 }, nowMs).result.allowed) history.push({ atMs: nowMs, cost: 1 });
  }
  return history;
}

describe("a gradual deployment: two versions of a rule's limits serving one client by turns", () => {
  it("admits no more than the wider of the two allows, in any interval, for every algorithm", () => {
    fc.assert(
      fc.property(rollout, (run) => {
        bounds[run.algorithm](runRollout(run), widestLimits(run.versions));
      }),
      { numRuns: 300 },
    );
  });

  it("is a check that fails a limiter which starts a fresh bucket whenever the limits change", () => {
    const versions = [ruleOf("token-bucket", { limit: 5, periodSeconds: 60 }), ruleOf("token-bucket", { limit: 10, periodSeconds: 60 })];
    const steps = Array.from({ length: 40 }, (_, index) => ({ version: index % 2, gapMs: 0 }));
    expect(runRollout({ versions, steps })).toHaveLength(10);
    expect(() => bounds["token-bucket"](runRollout({ versions, steps }, true), widestLimits(versions))).toThrow();
  });
});
