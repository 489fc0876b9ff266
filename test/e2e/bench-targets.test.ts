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
    overAdmissionByLevel: null,
    unexplainedDenials: null,
    durableObjectRequestsPerDecision: 1,
    rowsWrittenPerDecision: 0,
    rowsWrittenPerAdmitted: 0,
    usdPerMillionDecisions: 0.45,
    firstDecisions: null,
    usdPerMillionRepeatDecisions: null,
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
  it("holds the hot key at 0.8 x ceiling-plain with at most 0.01 object requests per decision", () => {
    const hot = (ratioToCeilingPlain: number, durableObjectRequestsPerDecision: number) =>
      check(
        [entry("hot-admitted", "this-project", { ratioToCeilingPlain, durableObjectRequestsPerDecision })],
        "hot key, all admitted, one isolate",
      )?.held;
    expect(hot(0.8, 0.01)).toBe(true);
    expect(hot(0.79, 0.001)).toBe(false);
    expect(hot(1.2, 0.011)).toBe(false);
  });

  it("wants the hot key's p50 within 1 ms of ceiling-plain's", () => {
    const latency = (p50Ms: number) =>
      check([entry("hot-admitted", "this-project", { p50Ms }), entry("hot-admitted", "ceiling-plain", { p50Ms: 5 })], "hot key p50 latency")
        ?.held;
    expect(latency(6)).toBe(true);
    expect(latency(6.5)).toBe(false);
  });

  it("wants four isolates on one key at 0.8 x ceiling-plain, and admitting at least 0.99 of the bound", () => {
    const spread = (ratioToCeilingPlain: number) =>
      check([entry("hot-admitted-4-isolates", "this-project", { ratioToCeilingPlain })], "hot-admitted-4-isolates")?.held;
    expect(spread(0.8)).toBe(true);
    expect(spread(0.7)).toBe(false);
    const accuracy = (admittedByServer: number, overAdmission: number) =>
      check(
        [entry("accuracy-4-isolates", "this-project", { admittedByServer, allowedByBound: 150, overAdmission })],
        "accuracy-4-isolates: leases strand little",
      )?.held;
    expect(accuracy(149, 0)).toBe(true);
    expect(accuracy(148, 0)).toBe(false);
    expect(accuracy(150, 1)).toBe(false);
  });

  it("wants every client of a slow rule's flood admitted exactly what the bound allows, through one isolate or four", () => {
    for (const scenario of ["slow-flood", "slow-flood-4-isolates"]) {
      const flood = (admittedByServer: number, overAdmission: number) =>
        check(
          [entry(scenario, "this-project", { admittedByServer, allowedByBound: 800, overAdmission })],
          `${scenario}: no budget stranded`,
        )?.held;
      expect(flood(800, 0)).toBe(true);
      expect(flood(799, 0)).toBe(false);
      expect(flood(800, 1)).toBe(false);
    }
  });

  it("compares the zipf mix with a global rule to the same mix without it, round by round", () => {
    const global = (roundRequestsPerSecond: number[]) =>
      check(
        [
          entry("zipf-1000-4-isolates", "this-project", { roundRequestsPerSecond: [100, 200, 300] }),
          entry("zipf-1000-4-isolates", "global-zipf-1000", { roundRequestsPerSecond }),
        ],
        "global-zipf-1000: a global rule costs little",
      )?.held;
    expect(global([80, 200, 100])).toBe(true);
    expect(global([79, 159, 400])).toBe(false);
  });

  it("wants the hierarchy at 0.7 x zipf-1000 round by round, exact at every level both ways, and no request failed", () => {
    const exact: Partial<Entry> = {
      roundRequestsPerSecond: [70, 140, 100],
      admittedByServer: 900,
      allowedByBound: 900,
      overAdmission: 0,
      overAdmissionByLevel: { client: 0, org: -3, global: -500 },
      unexplainedDenials: 0,
      denied: 100,
    };
    const hierarchy = (figures: Partial<Entry>) =>
      check(
        [
          entry("zipf-1000", "this-project", { roundRequestsPerSecond: [100, 200, 300] }),
          entry("zipf-1000", "zipf-1000-hierarchy", { ...exact, ...figures }),
        ],
        "zipf-1000-hierarchy: client, org and global rules",
      );
    expect(hierarchy({})).toMatchObject({ held: true });
    expect(hierarchy({})?.note).toContain("client 0, org -3, global -500; 0 denials unexplained (100 answered 429)");
    expect(hierarchy({ roundRequestsPerSecond: [69, 139, 400] })?.held).toBe(false);
    expect(hierarchy({ overAdmission: 1, overAdmissionByLevel: { client: 0, org: 1, global: -500 } })?.held).toBe(false);
    expect(hierarchy({ overAdmission: null })?.held).toBe(false);
    expect(hierarchy({ allowedByBound: 901, unexplainedDenials: 1 })?.held).toBe(false);
    expect(hierarchy({ allowedByBound: null })?.held).toBe(false);
    expect(hierarchy({ other: 1 })?.held).toBe(false);
    expect(hierarchy({ errors: 1 })?.held).toBe(false);
  });

  it("wants the hot key with metrics on within 5 % of it with metrics off, round by round", () => {
    const metrics = (roundRequestsPerSecond: number[]) =>
      check(
        [
          entry("hot-admitted", "this-project", { roundRequestsPerSecond }),
          entry("hot-admitted", "metrics-off", { roundRequestsPerSecond: [1000, 2000, 3000] }),
        ],
        "metrics cost little on the hot key",
      )?.held;
    expect(metrics([950, 1900, 3000])).toBe(true);
    expect(metrics([949, 1899, 3100])).toBe(false);
  });

  it("wants zipf-1000 at 0.7 x ceiling-do for at most $0.50 per million decisions", () => {
    const zipf = (ratioToCeilingDo: number, usdPerMillionDecisions: number) =>
      checkTargets([entry("zipf-1000", "this-project", { ratioToCeilingDo, usdPerMillionDecisions })])
        .filter((result) => result.target.startsWith("zipf-1000"))
        .map((result) => result.held);
    expect(zipf(0.7, 0.5)).toEqual([true, true]);
    expect(zipf(0.69, 0.51)).toEqual([false, false]);
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
    expect(check([exact, entry("zipf-1000", "zipf-1000-hierarchy", { overAdmission: 1 })], "over-admission")?.held).toBe(false);
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
