import { describe, expect, it } from "vitest";
import type { Entry } from "../../bench/run.ts";
import { checkTargets } from "../../bench/targets.ts";

/** One result entry with every figure neutral, for the fields a check reads to be set. */
function entry(scenario: string, system: string, figures: Partial<Entry> = {}): Entry {
  return {
    system,
    scenario,
    requests: 1000,
    sent: 1000,
    requestsPerSecond: 1000,
    p50Ms: 1,
    p99Ms: 2,
    admitted: 1000,
    admittedByServer: 1000,
    denied: 0,
    other: 0,
    errors: 0,
    elapsedSeconds: 1,
    loadCpuShare: 0.5,
    overAdmission: null,
    allowedByBound: null,
    durableObjectRequestsPerDecision: 1,
    rowsWrittenPerDecision: 0,
    rowsWrittenPerAdmitted: 0,
    usdPerMillionDecisions: 0.45,
    costSource: "counted",
    roundRequestsPerSecond: [1000],
    ratioToCeilingDo: null,
    ratioToCeilingPlain: null,
    ...figures,
  };
}

function check(entries: Entry[], target: string) {
  return checkTargets(entries).find((result) => result.target === target);
}

describe("the bench's target checks", () => {
  it("holds the hot key at 0.9 x ceiling-do and not below", () => {
    expect(check([entry("hot-admitted", "this-project", { ratioToCeilingDo: 0.9 })], "hot key, all admitted")?.held).toBe(true);
    expect(check([entry("hot-admitted", "this-project", { ratioToCeilingDo: 0.89 })], "hot key, all admitted")?.held).toBe(false);
  });

  it("checks the denied flood against 0.8 x ceiling-plain and reports the floor measured beside it", () => {
    const result = check(
      [
        entry("hot-denied", "this-project", { ratioToCeilingPlain: 0.79, admitted: 1, denied: 999 }),
        entry("hot-denied", "plain-429 (floor)", { ratioToCeilingPlain: 0.76 }),
      ],
      "hot key, denied flood",
    );
    expect(result?.held).toBe(false);
    expect(result?.measured).toBe("0.79");
    expect(result?.note).toContain("0.76");
  });

  it("fails over-admission on any scenario that measured it", () => {
    const exact = entry("accuracy", "this-project", { overAdmission: -1 });
    expect(check([exact], "over-admission")).toMatchObject({ held: true, measured: "0" });
    expect(check([exact, entry("zipf-1000", "this-project", { overAdmission: 2 })], "over-admission")).toMatchObject({
      held: false,
      measured: "2",
    });
  });

  it("allows a denied flood only the rows of its admitted first decisions", () => {
    const flood = (rows: number) =>
      entry("hot-denied", "this-project", { admitted: 1, denied: 9999, sent: 10_000, rowsWrittenPerDecision: rows / 10_000 });
    expect(check([flood(2)], "rows written per denial")?.held).toBe(true);
    expect(check([flood(3)], "rows written per denial")?.held).toBe(false);
  });

  it("checks rows per admitted decision on repeat clients and reports new clients beside them", () => {
    const result = check(
      [
        entry("hot-admitted", "this-project", { rowsWrittenPerAdmitted: 0.004 }),
        entry("zipf-1000", "this-project", { rowsWrittenPerAdmitted: 1.2 }),
        entry("new-client", "this-project", { rowsWrittenPerAdmitted: 2 }),
      ],
      "rows written per admitted decision",
    );
    expect(result?.held).toBe(false);
    expect(result?.note).toContain("new-client 2.00");
  });

  it("wants more requests/s than every exact peer measured", () => {
    const zipf = (ours: number) => [
      entry("zipf-1000", "this-project", { requestsPerSecond: ours }),
      entry("zipf-1000", "naive-do", { requestsPerSecond: 600 }),
      entry("zipf-1000", "hono-rate-limiter", { requestsPerSecond: 700 }),
    ];
    const target = "zipf-1000: faster than naive-do and hono-rate-limiter";
    expect(check(zipf(701), target)?.held).toBe(true);
    expect(check(zipf(650), target)?.held).toBe(false);
  });

  it("checks nothing whose figures the run does not have", () => {
    expect(checkTargets([entry("hot-admitted", "ceiling-do")])).toEqual([]);
  });
});
