import { describe, expect, it } from "vitest";
import { withLimits } from "../../src/policy/limits.ts";
import { parsePolicy } from "../../src/policy/load.ts";

describe("withLimits", () => {
  const [rule] = parsePolicy({ rules: [{ name: "api", limit: 10, period: "1m", burst: 20 }] }).rules;
  if (!rule) throw new Error("no rule");
  it.each([
    [{ limit: 100 }, [100, 60, 100]],
    [{ burst: 50 }, [10, 60, 50]],
    [{ limit: 100, burst: 150 }, [100, 60, 150]],
    [{ periodSeconds: 3600 }, [10, 3600, 20]],
  ])("%j → limit, period, burst %j", (limits, expected) => {
    const tiered = withLimits(rule, limits);
    expect([tiered.limit, tiered.periodSeconds, tiered.burst]).toEqual(expected);
  });
});
