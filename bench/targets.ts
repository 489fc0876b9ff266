// The targets this project sets itself (bench/README.md), checked against one run's entries, so that every run says
// whether they held in it rather than leaving that to whoever reads the table.
import { median } from "./harness.ts";
import type { Entry } from "./run.ts";

/** One target as this run measured it. */
export interface TargetCheck {
  target: string;
  required: string;
  measured: string;
  held: boolean;
  /** What else the run measured that bears on it (the denied flood's floor, the clients that cost more). */
  note?: string;
}

const OURS = "this-project";
/** The label of the denied flood's floor, measured beside it by run.ts. */
export const FLOOR = "plain-429 (floor)";
/** The label of the hot key's floor inside Hono, measured beside it by run.ts. */
export const ADMITTED_FLOOR = "hono-admitted (floor)";
/** The label of ceiling-do plus a first decision's two rows, measured beside zipf-1000 and new-client by run.ts. */
export const FIRST_WRITE_FLOOR = "first-write-do (floor)";
/** The label of this project with a global rule added, measured in zipf-1000-4-isolates' rounds by run.ts. */
export const GLOBAL_ZIPF = "global-zipf-1000";
/**
 * The label of this project with an org rule and a global rule besides the client's (hierarchy.ts), measured in
 * zipf-1000's rounds by run.ts.
 */
export const HIERARCHY_ZIPF = "zipf-1000-hierarchy";
/** The label of this project with `metrics: false`, measured in hot-admitted's rounds by run.ts. */
export const METRICS_OFF = "metrics-off";
/** The label of the limiter called from a plain fetch handler (`createLimiter().limit(key)`), measured in hot-admitted's rounds. */
export const HOT_ADMITTED_CORE = "hot-admitted-core";
/** The label of hot-admitted-core's floor: its handler awaiting an answer already made, no limiter behind it. */
export const CORE_FLOOR = "plain-awaited (floor)";
/** The label of the same decisions through RateLimitService over a service binding, measured in hot-admitted's rounds. */
export const SERVICE_BINDING = "service-binding";
const EXACT_PEERS = ["naive-do", "hono-rate-limiter"];

function entryOf(entries: Entry[], scenario: string, system: string): Entry | undefined {
  return entries.find((entry) => entry.scenario === scenario && entry.system === system);
}

/** `entry`'s requests/s against `base`'s measured in the same rounds: the median of the round-by-round ratios, as for the ceilings. */
function sameRoundsRatio(entry: Entry, base: Entry): number {
  return median(entry.roundRequestsPerSecond.map((rps, round) => rps / (base.roundRequestsPerSecond[round] ?? Number.NaN)));
}

/** A saturating scenario's check: admitted at least `share` of what the bound allows, and never more than it in any interval. */
function exactBothWays(target: string, entry: Entry, share: number): TargetCheck {
  const allowed = entry.allowedByBound ?? 0;
  const measuredShare = entry.admittedByServer / Math.max(1, allowed);
  const over = Math.max(0, entry.overAdmission ?? 0);
  return {
    target,
    required: `admitted >= ${share.toFixed(2)} x allowedByBound, over-admission 0`,
    measured: `${entry.admittedByServer} of ${allowed} (${measuredShare.toFixed(3)}), over-admission ${over}`,
    held: measuredShare >= share && (entry.overAdmission ?? 1) <= 0,
  };
}

function ratio(value: number | null | undefined): string {
  return value === null || value === undefined ? "-" : value.toFixed(2);
}

function ratioAtLeast(ours: Entry, field: "ratioToCeilingDo" | "ratioToCeilingPlain", at: number): boolean {
  const value = ours[field];
  return value !== null && value >= at;
}

/** The service-binding hop's requests/s against hot-admitted-core's in the same rounds, or "-" when not measured. */
function serviceToCore(entries: Entry[], core: Entry): string {
  const service = entryOf(entries, "hot-admitted", SERVICE_BINDING);
  return service ? sameRoundsRatio(service, core).toFixed(2) : "-";
}

/**
 * zipf-1000-hierarchy against zipf-1000 in the same rounds: at least 0.70 of its requests/s, no level over its bound
 * in any interval, every denial explained by a level's bound (admitted 1.00 of what the bounds allowed), no failure.
 */
function hierarchyCheck(hierarchy: Entry, zipf: Entry): TargetCheck {
  const relative = sameRoundsRatio(hierarchy, zipf);
  const allowed = hierarchy.allowedByBound;
  const share = allowed === null ? null : hierarchy.admittedByServer / Math.max(1, allowed);
  const over = hierarchy.overAdmission;
  const failed = hierarchy.other + hierarchy.errors;
  const levels = Object.entries(hierarchy.overAdmissionByLevel ?? {})
    .map(([level, worst]) => `${level} ${worst}`)
    .join(", ");
  return {
    target: "zipf-1000-hierarchy: client, org and global rules",
    required: ">= 0.70 x zipf-1000 in the same rounds, over-admission 0 at every level, admitted 1.00 of what the bounds allowed, 0 failed",
    measured: `${relative.toFixed(2)} (${Math.round(hierarchy.requestsPerSecond)} against ${Math.round(zipf.requestsPerSecond)} req/s), over-admission ${over === null ? "-" : Math.max(0, over)}, ${hierarchy.admittedByServer} of ${allowed ?? "-"} (${share === null ? "-" : share.toFixed(3)}), ${failed} failed`,
    held: relative >= 0.7 && over !== null && over <= 0 && share !== null && share >= 1 && failed === 0,
    note: `each level's worst interval against its bound (0 at it, below 0 under it): ${levels || "-"}; ${hierarchy.unexplainedDenials ?? "-"} denials unexplained (${hierarchy.denied} answered 429)`,
  };
}

/**
 * Every target whose figures the run has (a run limited with `--systems` or `--scenarios` checks fewer). Ratios are
 * the medians of the per-round ratios, as in the table.
 */
export function checkTargets(entries: Entry[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const hot = entryOf(entries, "hot-admitted", OURS);
  if (hot?.ratioToCeilingPlain != null)
    checks.push({
      target: "hot key, all admitted, one isolate",
      required: ">= 0.80 x ceiling-plain, <= 0.01 DO requests per decision",
      measured: `${ratio(hot.ratioToCeilingPlain)}, ${hot.durableObjectRequestsPerDecision.toFixed(4)}`,
      held: ratioAtLeast(hot, "ratioToCeilingPlain", 0.8) && hot.durableObjectRequestsPerDecision <= 0.01,
      note: `x ceiling-do ${ratio(hot.ratioToCeilingDo)}; the same admission through Hono with no limiter (${ADMITTED_FLOOR}): ${ratio(entryOf(entries, "hot-admitted", ADMITTED_FLOOR)?.ratioToCeilingPlain)}`,
    });
  const hotPlain = entryOf(entries, "hot-admitted", "ceiling-plain");
  if (hot && hotPlain)
    checks.push({
      target: "hot key p50 latency",
      required: "<= ceiling-plain's p50 + 1 ms",
      measured: `${hot.p50Ms.toFixed(1)} ms against ${hotPlain.p50Ms.toFixed(1)} ms`,
      held: hot.p50Ms <= hotPlain.p50Ms + 1,
      note: `${ADMITTED_FLOOR}: ${entryOf(entries, "hot-admitted", ADMITTED_FLOOR)?.p50Ms.toFixed(1) ?? "-"} ms`,
    });
  const hotSpread = entryOf(entries, "hot-admitted-4-isolates", OURS);
  if (hotSpread?.ratioToCeilingPlain != null)
    checks.push({
      target: "hot-admitted-4-isolates",
      required: ">= 0.80 x ceiling-plain",
      measured: `${ratio(hotSpread.ratioToCeilingPlain)} (${hotSpread.durableObjectRequestsPerDecision.toFixed(4)} DO requests per decision)`,
      held: ratioAtLeast(hotSpread, "ratioToCeilingPlain", 0.8),
    });
  const accuracySpread = entryOf(entries, "accuracy-4-isolates", OURS);
  if (accuracySpread?.allowedByBound) {
    // Saturated by 64 connections: what leases strand in isolates shows as admissions short of the bound.
    checks.push(exactBothWays("accuracy-4-isolates: leases strand little", accuracySpread, 0.99));
  }
  for (const scenario of ["slow-flood", "slow-flood-4-isolates"]) {
    const flood = entryOf(entries, scenario, OURS);
    // Every client flooded past its burst of a slow rule: each should be admitted exactly what the bound allows.
    if (flood?.allowedByBound) checks.push(exactBothWays(`${scenario}: no budget stranded`, flood, 1));
  }
  const core = entryOf(entries, "hot-admitted", HOT_ADMITTED_CORE);
  if (core?.ratioToCeilingPlain != null)
    checks.push({
      target: "hot-admitted-core: the limiter from any code, no Hono",
      required: ">= 0.90 x ceiling-plain",
      measured: `${ratio(core.ratioToCeilingPlain)} (${core.durableObjectRequestsPerDecision.toFixed(4)} DO requests per decision)`,
      held: ratioAtLeast(core, "ratioToCeilingPlain", 0.9),
      note: `its handler with no limiter behind the promise (${CORE_FLOOR}): ${ratio(entryOf(entries, "hot-admitted", CORE_FLOOR)?.ratioToCeilingPlain)}; the middleware in the same rounds: ${ratio(hot?.ratioToCeilingPlain)}; through RateLimitService (${SERVICE_BINDING}): ${serviceToCore(entries, core)} x hot-admitted-core`,
    });
  const metricsOff = entryOf(entries, "hot-admitted", METRICS_OFF);
  if (hot && metricsOff) {
    const relative = sameRoundsRatio(hot, metricsOff);
    checks.push({
      target: "metrics cost little on the hot key",
      required: `>= 0.95 x this project with metrics off (${METRICS_OFF}), in the same rounds`,
      measured: `${relative.toFixed(2)} (${Math.round(hot.requestsPerSecond)} against ${Math.round(metricsOff.requestsPerSecond)} req/s)`,
      held: relative >= 0.95,
    });
  }
  const zipfSpread = entryOf(entries, "zipf-1000-4-isolates", OURS);
  const globalZipf = entryOf(entries, "zipf-1000-4-isolates", GLOBAL_ZIPF);
  if (zipfSpread && globalZipf) {
    const relative = sameRoundsRatio(globalZipf, zipfSpread);
    checks.push({
      target: "global-zipf-1000: a global rule costs little",
      required: ">= 0.80 x zipf-1000-4-isolates, in the same rounds",
      measured: `${relative.toFixed(2)} (${Math.round(globalZipf.requestsPerSecond)} against ${Math.round(zipfSpread.requestsPerSecond)} req/s)`,
      held: relative >= 0.8,
    });
  }
  const zipf = entryOf(entries, "zipf-1000", OURS);
  const hierarchy = entryOf(entries, "zipf-1000", HIERARCHY_ZIPF);
  if (zipf && hierarchy) checks.push(hierarchyCheck(hierarchy, zipf));
  if (zipf?.ratioToCeilingDo != null) {
    const floor = entryOf(entries, "zipf-1000", FIRST_WRITE_FLOOR);
    checks.push({
      target: "zipf-1000",
      required: ">= 0.70 x ceiling-do",
      measured: ratio(zipf.ratioToCeilingDo),
      held: ratioAtLeast(zipf, "ratioToCeilingDo", 0.7),
      ...(floor ? { note: `ceiling-do plus a first decision's two rows (${FIRST_WRITE_FLOOR}): ${ratio(floor.ratioToCeilingDo)}` } : {}),
    });
    checks.push({
      target: "zipf-1000 cost",
      required: "<= $0.50 per million decisions",
      measured: `$${zipf.usdPerMillionDecisions.toFixed(3)} (${zipf.durableObjectRequestsPerDecision.toFixed(3)} DO requests, ${zipf.rowsWrittenPerDecision.toFixed(3)} rows written per decision)`,
      held: zipf.usdPerMillionDecisions <= 0.5,
      ...(zipf.firstDecisions === null
        ? {}
        : {
            note: `${zipf.firstDecisions} of ${zipf.sent} decisions were a client's first (a new object, 2 rows); the others cost $${zipf.usdPerMillionRepeatDecisions?.toFixed(3)} per million`,
          }),
    });
  }

  const denied = entryOf(entries, "hot-denied", OURS);
  if (denied?.ratioToCeilingPlain != null) {
    const floor = entryOf(entries, "hot-denied", FLOOR);
    const check: TargetCheck = {
      target: "hot key, denied flood",
      required: ">= 0.80 x ceiling-plain",
      measured: ratio(denied.ratioToCeilingPlain),
      held: ratioAtLeast(denied, "ratioToCeilingPlain", 0.8),
    };
    // The floor sends the same 429 from a plain fetch handler: under 0.8, nothing that answers with it could hold this.
    if (floor?.ratioToCeilingPlain != null)
      check.note = `the same 429 from a plain fetch handler (${FLOOR}): ${ratio(floor.ratioToCeilingPlain)}`;
    checks.push(check);
  }

  const measuredAccuracy = entries.filter(
    (entry) => (entry.system === OURS || entry.system === HIERARCHY_ZIPF) && entry.overAdmission !== null,
  );
  if (measuredAccuracy.length > 0) {
    const worst = Math.max(0, ...measuredAccuracy.map((entry) => entry.overAdmission ?? 0));
    checks.push({ target: "over-admission", required: "0", measured: String(worst), held: worst === 0 });
  }

  // Repeat clients: a client's first decision also sets its one cleanup alarm (billed as a row), so a workload of
  // nothing but first decisions (new-client) costs 2 rows each, reported in the note rather than checked here.
  const repeat = ["hot-admitted", "zipf-1000"].flatMap((scenario) => entryOf(entries, scenario, OURS) ?? []);
  if (repeat.length > 0) {
    const newClients = entryOf(entries, "new-client", OURS);
    const check: TargetCheck = {
      target: "rows written per admitted decision",
      required: "<= 1",
      measured: repeat.map((entry) => `${entry.scenario} ${entry.rowsWrittenPerAdmitted.toFixed(3)}`).join(", "),
      held: repeat.every((entry) => entry.rowsWrittenPerAdmitted <= 1),
    };
    if (newClients)
      check.note = `new-client ${newClients.rowsWrittenPerAdmitted.toFixed(2)}: each is a client's first decision (its state and its cleanup alarm)`;
    checks.push(check);
  }

  // A denial writes nothing: the rows of a denied flood are those of its admitted requests (first decisions, 2 each).
  if (denied && denied.denied > 0) {
    const rowsWritten = Math.round(denied.rowsWrittenPerDecision * denied.sent);
    checks.push({
      target: "rows written per denial",
      required: "0",
      measured: `${rowsWritten} rows for ${denied.admitted} admitted and ${denied.denied} denied`,
      held: rowsWritten <= 2 * denied.admitted,
    });
  }

  for (const scenario of ["hot-admitted", "zipf-1000"]) {
    const ours = entryOf(entries, scenario, OURS);
    const peers = EXACT_PEERS.flatMap((system) => entryOf(entries, scenario, system) ?? []);
    if (!ours || peers.length === 0) continue;
    checks.push({
      target: `${scenario}: faster than ${peers.map((peer) => peer.system).join(" and ")}`,
      required: "more req/s",
      measured: [ours, ...peers].map((entry) => `${entry.system} ${Math.round(entry.requestsPerSecond)}`).join(", "),
      held: peers.every((peer) => ours.requestsPerSecond > peer.requestsPerSecond),
    });
  }
  return checks;
}
