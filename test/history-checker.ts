import { expect } from "vitest";
import type { AlgorithmName } from "../src/limiter/registry.ts";
import type { RuleLimits } from "../src/limiter/types.ts";

/**
 * An independent history checker: given every admission a rule made, whether they stay within the rule's
 * stated bound (docs/algorithms.md). It knows nothing of how an algorithm or object decides.
 */

/** One admitted request, as a history records it. */
export interface Admission {
  atMs: number;
  cost: number;
}

/** Each algorithm's stated bound on what it admits, checked over every admission it made. */
export const bounds: Record<AlgorithmName, (admitted: Admission[], limits: RuleLimits) => void> = {
  "token-bucket": rateBound,
  gcra: rateBound,
  "leaky-bucket": rateBound,
  "fixed-window": alignedWindowBound,
  "sliding-window-counter": alignedWindowBound,
  "sliding-window-log": slidingWindowBound,
};

/** At most burst + rate × t in any interval of length t (integer form: × periodMs). */
function rateBound(admitted: Admission[], limits: RuleLimits): void {
  const periodMs = limits.periodSeconds * 1000;
  for (let i = 0; i < admitted.length; i++) {
    let total = 0;
    for (let j = i; j < admitted.length; j++) {
      total += admitted[j]?.cost ?? 0;
      const elapsedMs = (admitted[j]?.atMs ?? 0) - (admitted[i]?.atMs ?? 0);
      expect(total * periodMs).toBeLessThanOrEqual(limits.burst * periodMs + limits.limit * elapsedMs);
    }
  }
}

/** At most `limit` in each window aligned to the period (so at most 2 × limit in any period). */
function alignedWindowBound(admitted: Admission[], limits: RuleLimits): void {
  const periodMs = limits.periodSeconds * 1000;
  const perWindow = new Map<number, number>();
  for (const { atMs, cost } of admitted) {
    const window = Math.floor(atMs / periodMs);
    perWindow.set(window, (perWindow.get(window) ?? 0) + cost);
  }
  for (const spent of perWindow.values()) expect(spent).toBeLessThanOrEqual(limits.limit);
}

/** At most `limit` in any window (t − period, t]. */
function slidingWindowBound(admitted: Admission[], limits: RuleLimits): void {
  const periodMs = limits.periodSeconds * 1000;
  for (let j = 0; j < admitted.length; j++) {
    const end = admitted[j]?.atMs ?? 0;
    const inWindow = admitted.filter((a) => a.atMs > end - periodMs && a.atMs <= end).reduce((sum, a) => sum + a.cost, 0);
    expect(inWindow).toBeLessThanOrEqual(limits.limit);
  }
}
