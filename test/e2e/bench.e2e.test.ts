import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "bench-quick-"));
// The run's own temporary directory, where the workerd storage goes: none of it may be left afterwards.
const runTmp = mkdtempSync(join(tmpdir(), "bench-quick-tmp-"));
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(runTmp, { recursive: true, force: true });
});

const SYSTEMS = ["ceiling-plain", "ceiling-do", "this-project", "naive-do", "hono-rate-limiter", "cf-ratelimit-binding"];

it("runs the --quick benchmark harness end to end on a tiny scale, leaves no process behind, and type-checks", () => {
  const result = spawnSync(
    process.execPath,
    // One group-commit window besides the default, so that batching under a write window is exercised too; two
    // rounds, so that the systems take turns.
    [
      "bench/run.ts",
      "--quick",
      "--duration",
      "0.4",
      "--rounds",
      "2",
      "--scenarios",
      "hot-admitted,hot-denied,accuracy,accuracy-4-isolates",
      "--windows",
      "5",
      "--out",
      out,
    ],
    { cwd: ROOT, encoding: "utf8", timeout: 170_000, env: { ...process.env, TMPDIR: runTmp, BENCH_STORAGE_DIR: runTmp } },
  );
  expect(result.status, result.stderr).toBe(0);
  expect(result.stdout).toContain("x ceil-DO");
  expect(result.stdout).toContain("targets of this-project in this run");

  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as {
    entries: Array<{
      system: string;
      scenario: string;
      requests: number;
      sent: number;
      admitted: number;
      admittedByServer: number;
      requestsPerSecond: number;
      durableObjectRequestsPerDecision: number;
      overAdmission: number | null;
      ratioToCeilingDo: number | null;
      ratioToCeilingPlain: number | null;
      roundRequestsPerSecond: number[];
      denied: number;
      other: number;
      errors: number;
    }>;
    targets: Array<{ target: string; held: boolean; note?: string }>;
  };
  for (const system of SYSTEMS) {
    const accuracy = results.entries.find((entry) => entry.system === system && entry.scenario === "accuracy");
    expect(accuracy?.requestsPerSecond, system).toBeGreaterThan(0);
    expect(accuracy?.ratioToCeilingDo, system).not.toBeNull();
  }
  for (const entry of results.entries) {
    // Accuracy is one continuous round (its bound is over the whole run); the others take turns.
    expect(entry.roundRequestsPerSecond, `${entry.scenario} ${entry.system}`).toHaveLength(entry.scenario.startsWith("accuracy") ? 1 : 2);
    if (entry.system === "ceiling-plain") expect(entry.ratioToCeilingPlain).toBe(1);
  }
  // The denied flood's references are measured beside it, against the same ceiling.
  for (const reference of ["plain-429 (floor)", "hono-429"]) {
    const entry = results.entries.find((e) => e.system === reference);
    expect(entry?.scenario, reference).toBe("hot-denied");
    expect(entry?.ratioToCeilingPlain, reference).toBeGreaterThan(0);
    expect(entry?.denied, reference).toBeGreaterThan(0);
  }
  // Requests still in flight when a turn stops (one per connection) were decided too: costs are per request sent, so
  // the bare round trip costs one object request per decision, not one plus those left unanswered.
  // What was admitted is counted by the server, which also sees those answers.
  for (const entry of results.entries) {
    expect(entry.sent, `${entry.scenario} ${entry.system}`).toBeGreaterThanOrEqual(entry.requests);
    expect(entry.admittedByServer, `${entry.scenario} ${entry.system}`).toBeGreaterThanOrEqual(entry.admitted);
  }
  const roundTrip = results.entries.find((entry) => entry.system === "ceiling-do" && entry.scenario === "hot-admitted");
  expect(roundTrip?.durableObjectRequestsPerDecision).toBeCloseTo(1, 2);
  expect((roundTrip?.admittedByServer ?? 0) / (roundTrip?.sent ?? 1)).toBeCloseTo(1, 2);
  // The run checks the targets itself; the denied flood's comes with the floor measured beside it.
  expect(results.targets.map((check) => check.target)).toEqual(
    expect.arrayContaining([
      "hot key, all admitted, one isolate",
      "hot key, denied flood",
      "over-admission",
      "rows written per denial",
      "accuracy-4-isolates: leases strand little",
    ]),
  );
  expect(results.targets.find((check) => check.target === "hot key, denied flood")?.note).toContain("plain-429 (floor)");
  expect(results.targets.find((check) => check.target === "over-admission")?.held).toBe(true);
  for (const entry of results.entries.filter((e) => e.system === "this-project"))
    expect(entry.other + entry.errors, entry.scenario).toBe(0);
  const ours = results.entries.find((entry) => entry.system === "this-project" && entry.scenario === "accuracy");
  expect(ours?.overAdmission).toBeLessThanOrEqual(0);
  // Four isolates on one key: every isolate's admissions counted and checked as one history.
  const spread = results.entries.find((entry) => entry.system === "this-project" && entry.scenario === "accuracy-4-isolates");
  expect(spread?.admittedByServer).toBeGreaterThan(0);
  expect(spread?.overAdmission).toBeLessThanOrEqual(0);
  expect(readFileSync(join(out, "chart.svg"), "utf8")).toContain("<svg");

  const leftovers = spawnSync("pgrep", ["-f", `${join(ROOT, "bench")}/.build/.*capnp`], { encoding: "utf8" });
  expect(leftovers.stdout.trim()).toBe("");
  // Only the run's own storage: npm and Node may leave caches there (node-compile-cache).
  expect(
    readdirSync(runTmp).filter((name) => name.startsWith("bench-storage-")),
    "storage left behind",
  ).toEqual([]);
  expect(existsSync(join(ROOT, "bench/node_modules/autocannon"))).toBe(true);

  // With the bench package installed, its own code type-checks: the Node side and the Workers it serves.
  for (const project of ["bench", "bench/systems"]) {
    const typecheck = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", project], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(typecheck.status, `tsc -p ${project}: ${typecheck.stdout}`).toBe(0);
  }
}, 240_000);
