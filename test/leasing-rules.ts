import fc from "fast-check";
import type { AlgorithmName } from "../src/limiter/registry.ts";
import type { ObjectRule } from "../src/object/protocol.ts";

/** The algorithms that lease and hold: a lease's or a hold's units are outstanding in them (`Leasing`). */
export const LEASING_ALGORITHMS: AlgorithmName[] = ["token-bucket", "gcra", "leaky-bucket", "fixed-window"];

/** One enforcing rule `name` of a leasing algorithm at cost 1, its limit, period and burst drawn from these ranges. */
export function leasingRule(
  name: string,
  ranges: { limit: { min: number; max: number }; periodSeconds: { min: number; max: number }; extra: { min: number; max: number } },
): fc.Arbitrary<ObjectRule> {
  return fc
    .record({
      algorithm: fc.constantFrom(...LEASING_ALGORITHMS),
      limit: fc.integer(ranges.limit),
      periodSeconds: fc.integer(ranges.periodSeconds),
      extra: fc.integer(ranges.extra),
    })
    .map(
      ({ algorithm, limit, periodSeconds, extra }): ObjectRule => ({
        name,
        algorithm,
        limit,
        periodSeconds,
        burst: algorithm === "fixed-window" ? limit : limit + extra,
        cost: 1,
        mode: "enforce",
        onError: "allow",
        scope: "client",
      }),
    );
}
