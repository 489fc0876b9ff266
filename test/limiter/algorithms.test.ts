import { describe, expect, it } from "vitest";
import { type AlgorithmName, algorithmFor } from "../../src/limiter/registry.ts";
import type { RuleDecision, RuleLimits } from "../../src/limiter/types.ts";

/** Aligned to every period used here, so window edges fall on round numbers. */
const T0 = 1_699_999_200_000;

function run(name: AlgorithmName, limits: RuleLimits, steps: Array<[atMs: number, cost: number]>): RuleDecision[] {
  const algorithm = algorithmFor(name);
  let state = algorithm.initialState(limits, T0);
  return steps.map(([atMs, cost]) => {
    const outcome = algorithm.decide(state, limits, T0 + atMs, cost);
    state = outcome.state;
    return outcome.decision;
  });
}

const allowed = (decisions: RuleDecision[]) => decisions.map((d) => d.allowed);
const times = (count: number, atMs: number, cost = 1): Array<[number, number]> => Array.from({ length: count }, () => [atMs, cost]);

describe.each(["gcra", "leaky-bucket"] as const)("%s, which admits what a token bucket admits", (name) => {
  const burst5at2PerSecond: RuleLimits = { limit: 2, periodSeconds: 1, burst: 5 };

  it("admits the burst at once, then one request per emission interval", () => {
    const decisions = run(name, burst5at2PerSecond, [...times(6, 0), [499, 1], [500, 1], [500, 1], [1000, 1]]);
    expect(allowed(decisions)).toEqual([true, true, true, true, true, false, false, true, false, true]);
    expect(decisions[5]).toMatchObject({ remaining: 0, retryAfterSeconds: 1, resetSeconds: 3 });
  });

  it("reports remaining whole requests and seconds until empty of debt", () => {
    const [first] = run(name, burst5at2PerSecond, [[0, 2]]);
    expect(first).toMatchObject({ allowed: true, remaining: 3, resetSeconds: 1, retryAfterSeconds: 0 });
  });

  it("handles emission intervals that are not whole milliseconds (3 per 1 s)", () => {
    const limits: RuleLimits = { limit: 3, periodSeconds: 1, burst: 1 };
    // One every 333.33 ms: at 333 ms not yet, at 334 ms yes; the next 333.33 ms later, at 667.33: 668, not 667.
    expect(
      allowed(
        run(name, limits, [
          [0, 1],
          [333, 1],
          [334, 1],
          [667, 1],
          [668, 1],
        ]),
      ),
    ).toEqual([true, false, true, false, true]);
  });

  it("denies a cost above the burst with a reason", () => {
    const [decision] = run(name, burst5at2PerSecond, [[0, 6]]);
    expect(decision).toMatchObject({ allowed: false, reason: "cost-exceeds-capacity", remaining: 5 });
  });

  it("forgets debt after a huge gap but never goes above the burst", () => {
    expect(allowed(run(name, burst5at2PerSecond, [...times(5, 0), ...times(6, 365 * 86_400_000)]))).toEqual([
      ...Array(5).fill(true),
      ...Array(5).fill(true),
      false,
    ]);
  });
});

describe("fixed-window", () => {
  const threePerTen: RuleLimits = { limit: 3, periodSeconds: 10, burst: 3 };

  it("admits the limit per aligned window and resets at the window edge", () => {
    const decisions = run("fixed-window", threePerTen, [...times(4, 9_000), [9_999, 1], [10_000, 1]]);
    expect(allowed(decisions)).toEqual([true, true, true, false, false, true]);
    expect(decisions[3]).toMatchObject({ remaining: 0, retryAfterSeconds: 1, resetSeconds: 1 });
  });

  it("can admit twice the limit across a window edge, as it states", () => {
    expect(allowed(run("fixed-window", threePerTen, [...times(3, 9_999), ...times(3, 10_000)]))).toEqual(Array(6).fill(true));
  });

  it("denies a cost above what is left without charging it", () => {
    expect(
      run("fixed-window", threePerTen, [
        [0, 2],
        [0, 2],
        [0, 1],
      ]).map((d) => [d.allowed, d.remaining]),
    ).toEqual([
      [true, 1],
      [false, 1],
      [true, 0],
    ]);
  });

  it("denies a cost above the limit with a reason", () => {
    expect(run("fixed-window", threePerTen, [[0, 4]])[0]).toMatchObject({ allowed: false, reason: "cost-exceeds-capacity" });
  });
});

describe("sliding-window-log", () => {
  const threePerTen: RuleLimits = { limit: 3, periodSeconds: 10, burst: 3 };

  it("never admits more than the limit in any window, even across the fixed-window edge", () => {
    const decisions = run("sliding-window-log", threePerTen, [...times(3, 9_999), ...times(1, 10_000), [19_998, 1], [19_999, 1]]);
    expect(allowed(decisions)).toEqual([true, true, true, false, false, true]);
  });

  it("frees each entry exactly one period after it was admitted", () => {
    const decisions = run("sliding-window-log", threePerTen, [
      [0, 1],
      [4_000, 1],
      [5_000, 1],
      [9_999, 1],
      [10_000, 1],
      [10_000, 1],
    ]);
    expect(allowed(decisions)).toEqual([true, true, true, false, true, false]);
    expect(decisions[3]).toMatchObject({ retryAfterSeconds: 1, remaining: 0, resetSeconds: 6 });
  });

  it("computes retry-after from the entries that must expire to make room for the cost", () => {
    const decisions = run("sliding-window-log", threePerTen, [
      [0, 1],
      [2_000, 1],
      [3_000, 1],
      [3_500, 2],
    ]);
    expect(decisions[3]).toMatchObject({ allowed: false, retryAfterSeconds: 9 });
  });

  it("keeps at most `limit` entries", () => {
    const limits: RuleLimits = { limit: 50, periodSeconds: 60, burst: 50 };
    const algorithm = algorithmFor("sliding-window-log");
    let state = algorithm.initialState(limits, T0);
    for (let i = 0; i < 500; i++) state = algorithm.decide(state, limits, T0 + i * 10, 1).state;
    expect((state as { entries: unknown[] }).entries.length).toBeLessThanOrEqual(50);
  });
});

describe("sliding-window-counter", () => {
  const tenPerMinute: RuleLimits = { limit: 10, periodSeconds: 60, burst: 10 };

  it("weights the previous window by how much of it the sliding window still covers", () => {
    // 10 in the first window; 15 s into the next, 75% of them still count: 7.5, so 2 more fit, not 3.
    const decisions = run("sliding-window-counter", tenPerMinute, [...times(10, 30_000), ...times(3, 75_000)]);
    expect(allowed(decisions.slice(10))).toEqual([true, true, false]);
  });

  it("forgets a window that is two periods old", () => {
    const decisions = run("sliding-window-counter", tenPerMinute, [...times(10, 0), ...times(10, 120_000), [120_000, 1]]);
    expect(allowed(decisions)).toEqual([...Array(20).fill(true), false]);
  });

  it("says how long until the previous window's weight has shrunk enough", () => {
    const decisions = run("sliding-window-counter", tenPerMinute, [...times(10, 0), ...times(1, 60_000)]);
    // At the window edge all 10 still count; one unit frees after 6 s (10 per 60 s).
    expect(decisions[10]).toMatchObject({ allowed: false, retryAfterSeconds: 6 });
  });
});
