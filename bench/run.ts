// npm run bench: every system served by workerd directly, loaded by autocannon from its own
// process over 127.0.0.1, on identical work, in one run. See bench/README.md.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { workerdConfig } from "./capnp.ts";
import { renderChart } from "./chart.ts";
import { bundleWorker, freePort, median } from "./harness.ts";
import { checkHierarchy, HIERARCHY, type Hierarchy, levelsOf, ORG_HEADER, orgOf, type RecordedDecision } from "./hierarchy.ts";
import { MAX_CHECKED, type RecordedAdmission, worstOverAdmission } from "./history.ts";
import { SCENARIOS, type Scenario, SYSTEM_NAMES, type SystemName, systemConfig } from "./systems.ts";
import {
  ADMITTED_FLOOR,
  CORE_FLOOR,
  checkTargets,
  FIRST_WRITE_FLOOR,
  FLOOR,
  GLOBAL_ZIPF,
  HIERARCHY_ZIPF,
  HOT_ADMITTED_CORE,
  METRICS_OFF,
  SERVICE_BINDING,
} from "./targets.ts";

const BENCH = fileURLToPath(new URL(".", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORKERD = join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");

/** Cloudflare's published prices, Workers Paid plan (see bench/README.md): USD per million. */
export const PRICES = { workerRequests: 0.3, durableObjectRequests: 0.15, rowsWritten: 1.0, rowsRead: 0.001 };

interface Args {
  quick: boolean;
  /** Whether workerd and the load generator each get a core of their own (see `pinned`). */
  pin: boolean;
  durationSeconds: number;
  /** Rounds each measurement is split into, the systems of a scenario taking turns (see `measureScenario`). */
  rounds: number;
  systems: SystemName[];
  scenarios: string[];
  windows: number[];
  out: string;
}

function parseArgs(argv: string[]): Args {
  const value = (flag: string) => {
    const index = argv.indexOf(flag);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const quick = argv.includes("--quick");
  const systems = (value("--systems")?.split(",") ?? [...SYSTEM_NAMES]) as SystemName[];
  for (const system of systems)
    if (!SYSTEM_NAMES.includes(system)) throw new Error(`unknown system ${system}: one of ${SYSTEM_NAMES.join(", ")}`);
  return {
    quick,
    pin: !argv.includes("--no-pin"),
    durationSeconds: Number(value("--duration") ?? (quick ? 0.5 : 5)),
    rounds: Math.max(1, Math.floor(Number(value("--rounds") ?? (quick ? 1 : 5)))),
    systems,
    scenarios: value("--scenarios")?.split(",") ?? SCENARIOS.map((scenario) => scenario.name),
    // Group-commit windows tried for the hot key besides the shipped default, to show their cost in p99.
    windows: (value("--windows") ?? (quick ? "" : "1,2,5")).split(",").filter(Boolean).map(Number),
    out: value("--out") ?? BENCH,
  };
}

/**
 * The cores workerd and the load generator run on, one each, unless `--no-pin` or the machine
 * cannot. On a small machine they otherwise take turns on the same cores, and a system that needs
 * more CPU per request is slowed twice: by its own work and by the load generator's. In
 * production the clients are elsewhere; a core each is the nearest a 2-core machine gets to that.
 */
let cores: { server: string; load: string } | undefined;

function chooseCores(pin: boolean): typeof cores {
  if (!pin || cpus().length < 2 || spawnSync("taskset", ["--version"]).status !== 0) return undefined;
  return { server: "0", load: "1" };
}

/** `command args`, run on `core` when there is one. */
function onCore(core: string | undefined, command: string, args: string[]): [string, string[]] {
  return core === undefined ? [command, args] : ["taskset", ["--cpu-list", core, command, ...args]];
}

const children = new Set<ChildProcess>();
function killAll(): void {
  for (const child of children) child.kill("SIGKILL");
}

/**
 * Where the objects' storage goes: the temporary directory, on this machine's disk, unless `BENCH_STORAGE_DIR`
 * names another place, such as a RAM disk (`/dev/shm`), where a write costs CPU but no flush (see bench/README.md).
 */
function storageParent(): string {
  return process.env.BENCH_STORAGE_DIR ?? tmpdir();
}

/**
 * Every workerd's storage lives under one directory for the whole run, removed when the run ends. Removing a
 * scenario's objects (thousands of SQLite files) before the next scenario would slow that one's new objects down:
 * this machine's ext4 skips inodes freed a short while ago when it allocates new ones (see bench/README.md).
 */
const storageRoot = mkdtempSync(join(storageParent(), "bench-storage-"));
process.on("exit", () => {
  killAll();
  rmSync(storageRoot, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Writes out the dirty data of the file system that holds the storage (`sync -f`, Linux's syncfs). */
function flushFileSystem(): void {
  spawnSync("sync", ["-f", storageRoot]);
}

/** Installs the bench package (bench/package.json) unless every one of its dependencies is there. */
function ensureBenchDependencies(): void {
  const manifest = JSON.parse(readFileSync(join(BENCH, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
  if (Object.keys(manifest.devDependencies).every((name) => existsSync(join(BENCH, "node_modules", name)))) return;
  console.error("bench: installing bench/package.json (autocannon, the peers and their types) ...");
  const result = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: BENCH, stdio: "inherit" });
  if (result.status !== 0) throw new Error("bench: npm ci in bench/ failed");
}

/** A contender measured beside a scenario's systems, when the run measures those it is compared with. */
interface Reference {
  contender: Contender;
  scenarios: readonly string[];
  comparedWith: readonly SystemName[];
}

const REFERENCES: Reference[] = [
  // The denied flood's target is a ratio to ceiling-plain: what sending its 429 prebuilt costs at least, from a plain
  // fetch handler (the floor of anything that answers it) and from a Hono app like the benchmarked one whose
  // middleware answers it (where a cached denial answered inside Hono stops).
  {
    contender: { system: "ceiling-plain", label: FLOOR, bundle: "plain-429" },
    scenarios: ["hot-denied"],
    comparedWith: ["this-project", "ceiling-plain"],
  },
  {
    contender: { system: "ceiling-plain", label: "hono-429", bundle: "hono-429-with-route" },
    scenarios: ["hot-denied"],
    comparedWith: ["this-project", "ceiling-plain"],
  },
  // The hot key's: the same Hono app whose middleware lets every request through with the five headers prebuilt.
  {
    contender: { system: "ceiling-plain", label: ADMITTED_FLOOR, bundle: "hono-admitted" },
    scenarios: ["hot-admitted"],
    comparedWith: ["this-project", "ceiling-plain"],
  },
  // hot-admitted-core: the limiter called from a plain fetch handler (createLimiter().limit(key)), no Hono.
  {
    contender: { system: "this-project", label: HOT_ADMITTED_CORE, bundle: "core-limit" },
    scenarios: ["hot-admitted"],
    comparedWith: ["this-project", "ceiling-plain"],
  },
  // Its floor: the same handler awaiting an answer already made, as any promise-returning limit() makes it.
  {
    contender: { system: "ceiling-plain", label: CORE_FLOOR, bundle: "plain-awaited" },
    scenarios: ["hot-admitted"],
    comparedWith: ["this-project", "ceiling-plain"],
  },
  // service-binding: the same decisions through RateLimitService (the Worker's loopback service binding to it).
  {
    contender: { system: "this-project", label: SERVICE_BINDING, bundle: "service-limit" },
    scenarios: ["hot-admitted"],
    comparedWith: ["this-project", "ceiling-plain"],
  },
  // What metrics cost on the hot key: the shipped limiter (metrics on) against itself with them off, in the same rounds.
  {
    contender: { system: "this-project", label: METRICS_OFF, bundle: "metrics-off" },
    scenarios: ["hot-admitted"],
    comparedWith: ["this-project"],
  },
  // The mixes of new clients': ceiling-do's call plus the two rows a client's first decision must store (its state
  // and its cleanup alarm), the floor of an exact limiter that cleans up.
  {
    contender: { system: "ceiling-do", label: FIRST_WRITE_FLOOR, bundle: "first-write-do" },
    scenarios: ["zipf-1000", "new-client"],
    comparedWith: ["ceiling-do"],
  },
  // global-zipf-1000: the same mix with a global rule added (a limit that admits everything), in the same rounds as the
  // mix without it, so that the comparison meets the same storage and the same drift.
  {
    contender: { system: "this-project", label: GLOBAL_ZIPF, globalLimitPerSecond: 1_000_000 },
    scenarios: ["zipf-1000-4-isolates"],
    comparedWith: ["this-project"],
  },
  // zipf-1000-hierarchy: the same mix, each request counted against its client, its org (x-org) and everyone, in the
  // same rounds as the mix with its client rule only; its denials are recorded too, for its under-admission check.
  {
    contender: { system: "this-project", label: HIERARCHY_ZIPF, bundle: "denials-noted", hierarchy: HIERARCHY },
    scenarios: ["zipf-1000"],
    comparedWith: ["this-project"],
  },
];

async function build(buildDir: string, systems: SystemName[]): Promise<void> {
  const entries = [...systems, "origin"].map((name) => ({ name, path: join(BENCH, "systems", `${name}.ts`) }));
  for (const { contender } of REFERENCES)
    if (contender.bundle) entries.push({ name: contender.bundle, path: join(BENCH, "variants", `${contender.bundle}.ts`) });
  await Promise.all(entries.map(({ name, path }) => bundleWorker(path, join(buildDir, `${name}.js`))));
}

interface Stats {
  doRequests: number;
  rowsWritten: number;
  rowsRead: number;
  admitted: number;
  /** When the latest admission was made, and when these stats were read, on the server's clock (epoch ms). */
  lastAdmittedAtMs: number;
  nowMs: number;
  /**
   * Each admission as [arrived, admitted, client key] on the server's clock; null once there were too many to record
   * (a ceiling's flood).
   */
  admissions: RecordedDecision[] | null;
  /** Each denial, likewise, from a Worker that records them (variants/denials-noted.ts); absent from the others. */
  denials?: RecordedDecision[] | null;
  /** Clients decided for the first time (this project only: the decisions that set a client's cleanup alarm). */
  firstDecisions?: number;
}

/** The counters of every isolate of a system, added up; its admissions put together. */
async function stats(urls: readonly string[]): Promise<Stats> {
  const each = await Promise.all(urls.map(async (url) => (await (await fetch(`${url}/__bench/stats`)).json()) as Stats));
  const sum = (field: "doRequests" | "rowsWritten" | "rowsRead" | "admitted") => each.reduce((total, stat) => total + stat[field], 0);
  const firstDecisions = each.every((stat) => stat.firstDecisions === undefined)
    ? undefined
    : each.reduce((total, stat) => total + (stat.firstDecisions ?? 0), 0);
  const denials = each.every((stat) => stat.denials === undefined)
    ? undefined
    : each.every((stat) => Array.isArray(stat.denials))
      ? each.flatMap((stat) => stat.denials ?? [])
      : null;
  return {
    ...(firstDecisions === undefined ? {} : { firstDecisions }),
    ...(denials === undefined ? {} : { denials }),
    doRequests: sum("doRequests"),
    rowsWritten: sum("rowsWritten"),
    rowsRead: sum("rowsRead"),
    admitted: sum("admitted"),
    lastAdmittedAtMs: Math.max(...each.map((stat) => stat.lastAdmittedAtMs)),
    nowMs: Math.max(...each.map((stat) => stat.nowMs)),
    admissions: each.every((stat) => stat.admissions !== null) ? each.flatMap((stat) => stat.admissions ?? []) : null,
  };
}

/** Waits until a system has admitted nothing for 200 ms (at most 5 s): the requests still in flight are done. */
async function quiet(urls: readonly string[]): Promise<void> {
  let admitted = (await stats(urls)).admitted;
  for (let waited = 0; waited < 5_000; waited += 200) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = (await stats(urls)).admitted;
    if (now === admitted) return;
    admitted = now;
  }
}

/** A warm-up request's headers: its client's key, and its org when the scenario's clients have orgs (as load.ts sends them). */
function warmUpHeaders(key: string, scenario: Scenario): Record<string, string> {
  return scenario.orgs === undefined ? { "x-api-key": key } : { "x-api-key": key, [ORG_HEADER]: orgOf(key, scenario.orgs) };
}

/** Starts workerd on a fresh storage directory and waits until it answers. */
async function serve(contender: Contender, scenario: Scenario, buildDir: string) {
  const { system, groupCommitMs } = contender;
  const ports: number[] = [];
  // One after the other: freePort hands out a port the OS may hand out again once it is closed.
  while (ports.length < (scenario.isolates ?? 1)) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const storageDir = mkdtempSync(join(storageRoot, "workerd-"));
  const limit = scenario.limit;
  const config = systemConfig(system, {
    bundlePath: join(buildDir, `${contender.bundle ?? system}.js`),
    originPath: join(buildDir, "origin.js"),
    ports,
    storageDir,
    limit,
    groupCommitMs,
    globalLimitPerSecond: contender.globalLimitPerSecond,
    hierarchy: contender.hierarchy,
  });
  const configPath = join(buildDir, `${contender.label.replace(/\W+/g, "-")}.capnp`);
  writeFileSync(configPath, workerdConfig(config, buildDir));
  const child = spawn(...onCore(cores?.server, WORKERD, ["serve", configPath, "--experimental"]), { stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`workerd for ${system} exited: ${stderr}`);
    try {
      await stats(urls);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`workerd for ${system} did not answer: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const stop = async () => {
    child.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    children.delete(child);
  };
  return { urls, stop };
}

interface LoadResult {
  requests: number;
  /** Requests sent, answered or not (see load.ts). */
  sent: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  admitted: number;
  denied: number;
  other: number;
  errors: number;
  elapsedSeconds: number;
  loadCpuShare: number;
}

/** The load generator: one process (on its own core) for the whole run, one JSON line in and one out per load. */
class LoadGenerator {
  private readonly child: ChildProcess;
  private output = "";
  private readonly waiting: Array<{ resolve: (result: LoadResult) => void; reject: (error: Error) => void }> = [];

  constructor() {
    this.child = spawn(...onCore(cores?.load, process.execPath, [join(BENCH, "load.ts")]), {
      cwd: BENCH,
      stdio: ["pipe", "pipe", "inherit"],
    });
    children.add(this.child);
    this.child.stdout?.on("data", (chunk) => {
      this.output += chunk;
      for (let end = this.output.indexOf("\n"); end >= 0; end = this.output.indexOf("\n")) {
        const line = this.output.slice(0, end);
        this.output = this.output.slice(end + 1);
        this.waiting.shift()?.resolve(JSON.parse(line) as LoadResult);
      }
    });
    this.child.once("exit", (code) => {
      children.delete(this.child);
      for (const waiter of this.waiting.splice(0)) waiter.reject(new Error(`load generator exited with ${code}`));
    });
  }

  run(urls: readonly string[], scenario: Scenario, durationSeconds: number, keys = scenario.keys): Promise<LoadResult> {
    const options = {
      url: urls,
      connections: scenario.connections,
      durationSeconds,
      keys,
      zipfClients: 1000,
      floodKeys: scenario.floodKeys,
      orgs: scenario.orgs,
    };
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin?.write(`${JSON.stringify(options)}\n`);
    });
  }

  close(): void {
    this.child.stdin?.end();
  }
}

/**
 * A system as measured: the shipped settings, this project with another group-commit window, or a
 * reference Worker (`bundle`, from bench/variants/) served with a system's bindings.
 */
interface Contender {
  system: SystemName;
  label: string;
  groupCommitMs?: number | undefined;
  /** A global rule added to this project's policy, with this limit per second. */
  globalLimitPerSecond?: number;
  /** The hierarchy's org and global rules added to this project's policy, and each of their levels checked. */
  hierarchy?: Hierarchy;
  bundle?: string;
}

/** One system under one scenario: its figures, cost per decision and over-admission. */
export interface Entry extends LoadResult {
  system: string;
  scenario: string;
  /** Requests the server admitted (`admitted` counts the answers the load generator saw before it stopped). */
  admittedByServer: number;
  /**
   * Accuracy scenario: the most any interval of the system's admissions went over ⌊burst + rate × its length⌋, from
   * every admission the server recorded (over the whole span only when there were too many to record); 0 or less
   * is exact.
   */
  overAdmission: number | null;
  /**
   * Accuracy scenario: what the bound allows, ⌊burst + rate × span⌋ for each client. zipf-1000-hierarchy: what the
   * bounds allowed at least, the admissions and the denials that no level's bound explains.
   */
  allowedByBound: number | null;
  /** zipf-1000-hierarchy only: each level's worst interval against its bound (client, org, global); 0 or less is exact. */
  overAdmissionByLevel: Record<string, number> | null;
  /** zipf-1000-hierarchy only: the denials measured that no level's bound explains (`denialExplainer`); 0 is exact. */
  unexplainedDenials: number | null;
  durableObjectRequestsPerDecision: number;
  rowsWrittenPerDecision: number;
  rowsWrittenPerAdmitted: number;
  usdPerMillionDecisions: number;
  /**
   * This project only: decisions that were a client's first (each a new object, its state and its cleanup alarm:
   * two rows), and the dollars per million of the others, counting one object request and two rows to each first.
   */
  firstDecisions: number | null;
  usdPerMillionRepeatDecisions: number | null;
  costSource: "counted" | "counted requests; rows from the implementation";
  /** Requests/s of each round, in order; the ratios are the medians of the per-round ratios. */
  roundRequestsPerSecond: number[];
  ratioToCeilingDo: number | null;
  ratioToCeilingPlain: number | null;
}

/**
 * Every contender of one scenario, each on its own workerd (fresh storage) started and warmed up
 * first; then the measurement is split into rounds and the contenders take turns, round by round,
 * so that the machine's drift over the run (on a shared virtual machine, the same binary's CPU
 * time per request moves by ±20 % from minute to minute) hits every one of them alike. Accuracy
 * is one continuous round: its bound is over the whole run.
 */
async function measureScenario(scenario: Scenario, contenders: Contender[], args: Args, buildDir: string, loader: LoadGenerator) {
  const rounds = scenario.measuresAccuracy ? 1 : args.rounds;
  const servers: Array<Awaited<ReturnType<typeof serve>>> = [];
  try {
    for (const contender of contenders) servers.push(await serve(contender, scenario, buildDir));
    // Warm the isolates and the code paths with other clients, so the measured clients start fresh. The quick
    // run warms with a few requests from here rather than with the load generator, to stay within a minute.
    for (const server of servers) {
      if (args.quick) {
        for (const url of server.urls)
          for (let i = 0; i < 20; i++)
            await (await fetch(`${url}/bench`, { headers: warmUpHeaders(`warm-up-${i}`, scenario) })).arrayBuffer();
      } else {
        await loader.run(server.urls, { ...scenario, connections: 4 * server.urls.length }, 0.5, "unique");
      }
    }
    // The warm-up's last requests (one per connection, new clients, slow) may still be decided after its load stops.
    await Promise.all(servers.map((server) => quiet(server.urls)));
    const before = await Promise.all(servers.map((server) => stats(server.urls)));
    const results = contenders.map((): LoadResult[] => []);
    // Read on the server's clock just before a system's first turn: its admissions all fall after it.
    const firstTurnAt: Stats[] = [];
    // Each round starts one system later, so that no system is always first or last. And each turn starts with the
    // file system flushed: otherwise a turn pays for the disk writes the turn before it left behind (a SQLite commit's
    // fsync flushes the file system's journal, everyone's dirty data with it), and in cyclic order that is always the
    // same system's.
    for (let round = 0; round < rounds; round++) {
      for (let turn = 0; turn < servers.length; turn++) {
        const index = (round + turn) % servers.length;
        const server = servers[index] as (typeof servers)[number];
        flushFileSystem();
        if (round === 0) firstTurnAt[index] = await stats(server.urls);
        results[index]?.push(await loader.run(server.urls, scenario, args.durationSeconds / rounds));
      }
    }
    const after = await Promise.all(servers.map((server) => stats(server.urls)));
    return contenders.map((contender, index) =>
      entryOf(contender, scenario, results[index] ?? [], before[index] as Stats, after[index] as Stats, firstTurnAt[index] as Stats),
    );
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/** One contender's rounds as one entry: counts summed, latencies the median of the rounds', costs over all of them. */
function entryOf(contender: Contender, scenario: Scenario, rounds: LoadResult[], before: Stats, after: Stats, firstTurnAt: Stats): Entry {
  const sum = (field: keyof LoadResult) => rounds.reduce((total, round) => total + round[field], 0);
  const result = {
    requests: sum("requests"),
    sent: sum("sent"),
    requestsPerSecond: sum("requests") / Math.max(1e-9, sum("elapsedSeconds")),
    p50Ms: median(rounds.map((round) => round.p50Ms)),
    p99Ms: median(rounds.map((round) => round.p99Ms)),
    admitted: sum("admitted"),
    denied: sum("denied"),
    other: sum("other"),
    errors: sum("errors"),
    elapsedSeconds: sum("elapsedSeconds"),
    loadCpuShare: median(rounds.map((round) => round.loadCpuShare)),
  };
  const { system } = contender;
  // The requests still in flight when a round stops (one per connection) were decided and their writes counted too,
  // so costs are per request sent, and what was admitted is what the server counted.
  const decisions = Math.max(1, result.sent);
  const admittedByServer = after.admitted - before.admitted;
  const rowsWritten = after.rowsWritten - before.rowsWritten;
  const doRequests = after.doRequests - before.doRequests;
  const rowsRead = after.rowsRead - before.rowsRead;
  const first = after.firstDecisions === undefined ? undefined : after.firstDecisions - (before.firstDecisions ?? 0);
  return {
    system: contender.label,
    scenario: scenario.name,
    ...result,
    admittedByServer,
    ...accuracyOf(contender, scenario, { after, firstTurnAt, admittedByServer }),
    durableObjectRequestsPerDecision: doRequests / decisions,
    rowsWrittenPerDecision: rowsWritten / decisions,
    rowsWrittenPerAdmitted: admittedByServer > 0 ? rowsWritten / admittedByServer : 0,
    usdPerMillionDecisions: usdPerMillion(doRequests, rowsWritten, rowsRead, decisions),
    firstDecisions: first ?? null,
    usdPerMillionRepeatDecisions:
      first === undefined ? null : usdPerMillion(doRequests - first, rowsWritten - 2 * first, rowsRead, Math.max(1, decisions - first)),
    costSource: system === "cf-ratelimit-binding" ? "counted requests; rows from the implementation" : "counted",
    roundRequestsPerSecond: rounds.map((round) => round.requestsPerSecond),
    ratioToCeilingDo: null,
    ratioToCeilingPlain: null,
  };
}

type Accuracy = Pick<Entry, "overAdmission" | "allowedByBound" | "overAdmissionByLevel" | "unexplainedDenials">;

/**
 * How exact a contender was, when its scenario measures that or it is the hierarchy: over-admission on the history of
 * every client (and, for the hierarchy, of every org and of everyone), and what the bound allowed against it.
 */
function accuracyOf(
  contender: Contender,
  scenario: Scenario,
  run: { after: Stats; firstTurnAt: Stats; admittedByServer: number },
): Accuracy {
  const { after, firstTurnAt, admittedByServer } = run;
  const { limit } = scenario;
  // Over the interval that holds every admission, on the server's clock: from just before the system's first turn to its
  // last admission. The load generator's own window would miss the requests still in flight when it stops, which the
  // server admits after it and counts, and so report up to a round trip's refill as over-admission.
  const admissionSpanSeconds = Math.max(0, after.lastAdmittedAtMs - firstTurnAt.nowMs) / 1000;
  if (contender.hierarchy) return hierarchyAccuracyOf(contender.hierarchy, scenario, { ...run, admissionSpanSeconds });
  const unchecked = { overAdmissionByLevel: null, unexplainedDenials: null };
  if (!scenario.measuresAccuracy) return { overAdmission: null, allowedByBound: null, ...unchecked };
  // Each client's history is bounded on its own: one in the hot-key scenarios, `floodKeys` in the floods.
  const histories = new Map<string, RecordedAdmission[]>();
  for (const [fromMs, atMs, key] of after.admissions ?? []) {
    if (fromMs < firstTurnAt.nowMs) continue;
    const history = histories.get(key) ?? [];
    history.push({ fromMs, atMs });
    histories.set(key, history);
  }
  const recorded = [...histories.values()].reduce((total, history) => total + history.length, 0);
  const worstInHistory =
    after.admissions && recorded <= MAX_CHECKED
      ? Math.max(...[...histories.values()].map((history) => worstOverAdmission(history, limit)))
      : undefined;
  const allowedByBound = (scenario.floodKeys ?? 1) * Math.floor(limit.burst + (limit.limit / limit.periodSeconds) * admissionSpanSeconds);
  return { overAdmission: worstInHistory ?? admittedByServer - allowedByBound, allowedByBound, ...unchecked };
}

/**
 * The hierarchy's accuracy (hierarchy.ts): the worst level's over-admission, and as what the bounds allowed, the
 * admissions and the denials no level's bound explains. Unknown (null) when the server could not record them all.
 */
function hierarchyAccuracyOf(
  hierarchy: Hierarchy,
  scenario: Scenario,
  run: { after: Stats; firstTurnAt: Stats; admittedByServer: number; admissionSpanSeconds: number },
): Accuracy {
  const { admissions, denials } = run.after;
  if (!admissions || !denials) return { overAdmission: null, allowedByBound: null, overAdmissionByLevel: null, unexplainedDenials: null };
  const checked = checkHierarchy({
    admissions,
    denials,
    sinceMs: run.firstTurnAt.nowMs,
    spanSeconds: run.admissionSpanSeconds,
    levels: levelsOf(scenario.limit, hierarchy),
  });
  return {
    overAdmission: Math.max(...Object.values(checked.overAdmissionByLevel)),
    allowedByBound: run.admittedByServer + checked.unexplainedDenials,
    overAdmissionByLevel: checked.overAdmissionByLevel,
    unexplainedDenials: checked.unexplainedDenials,
  };
}

/** Dollars per million decisions at Cloudflare's prices, for these counts over `decisions`. */
function usdPerMillion(doRequests: number, rowsWritten: number, rowsRead: number, decisions: number): number {
  return (
    PRICES.workerRequests +
    (doRequests / decisions) * PRICES.durableObjectRequests +
    (rowsWritten / decisions) * PRICES.rowsWritten +
    (rowsRead / decisions) * PRICES.rowsRead
  );
}

/** The median over rounds of `entry`'s requests/s divided by the ceiling's in the same round. */
function ratioTo(entry: Entry, ceiling: Entry | undefined): number | null {
  if (!ceiling) return null;
  const ratios = entry.roundRequestsPerSecond.map((rps, round) => rps / (ceiling.roundRequestsPerSecond[round] ?? Number.NaN));
  return ratios.every(Number.isFinite) ? median(ratios) : null;
}

function format(value: number | null, digits = 0): string {
  return value === null ? "-" : value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.argv.includes("--render")) {
    // Redraws chart.svg from an existing results.json, without measuring anything.
    const previous = JSON.parse(readFileSync(join(args.out, "results.json"), "utf8")) as { entries: Entry[] };
    writeFileSync(join(args.out, "chart.svg"), renderChart(previous.entries));
    return;
  }
  const startedAt = Date.now();
  cores = chooseCores(args.pin);
  ensureBenchDependencies();
  const buildDir = join(BENCH, ".build");
  mkdirSync(buildDir, { recursive: true });
  await build(buildDir, args.systems);

  const loader = new LoadGenerator();
  const entries: Entry[] = [];
  for (const scenario of SCENARIOS.filter((s) => args.scenarios.includes(s.name))) {
    const systems = args.systems.filter((system) => scenario.systems?.includes(system) ?? true);
    const contenders: Contender[] = systems.map((system) => ({ system, label: system }));
    if (scenario.name === "hot-admitted" && args.systems.includes("this-project")) {
      for (const window of args.windows)
        contenders.push({ system: "this-project", label: `this-project (groupCommitMs=${window})`, groupCommitMs: window });
    }
    for (const { contender, scenarios, comparedWith } of REFERENCES)
      if (scenarios.includes(scenario.name) && comparedWith.every((system) => args.systems.includes(system))) contenders.push(contender);
    for (const entry of await measureScenario(scenario, contenders, args, buildDir, loader)) {
      entries.push(entry);
      console.error(`bench: ${entry.scenario.padEnd(13)} ${entry.system.padEnd(22)} ${format(entry.requestsPerSecond)} req/s`);
    }
  }
  loader.close();
  for (const entry of entries) {
    const ceiling = (name: string) => entries.find((e) => e.scenario === entry.scenario && e.system === name);
    entry.ratioToCeilingDo = ratioTo(entry, ceiling("ceiling-do"));
    entry.ratioToCeilingPlain = ratioTo(entry, ceiling("ceiling-plain"));
  }

  const header = [
    "scenario",
    "system",
    "req/s",
    "p50 ms",
    "p99 ms",
    "admitted",
    "denied",
    "failed",
    "over-adm.",
    "adm./bound",
    "DO req/dec",
    "rows/dec",
    "$/M dec",
    "x ceil-DO",
    "x ceil-plain",
  ];
  const rows = entries.map((e) => [
    e.scenario,
    e.system,
    format(e.requestsPerSecond),
    format(e.p50Ms, 1),
    format(e.p99Ms, 1),
    format(e.admitted),
    format(e.denied),
    format(e.other + e.errors),
    e.overAdmission === null ? "-" : format(Math.max(0, e.overAdmission)),
    e.allowedByBound ? format(e.admittedByServer / e.allowedByBound, 3) : "-",
    format(e.durableObjectRequestsPerDecision, 3),
    format(e.rowsWrittenPerDecision, 3),
    format(e.usdPerMillionDecisions, 3),
    format(e.ratioToCeilingDo, 2),
    format(e.ratioToCeilingPlain, 2),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  // Throughput only counts if the answers were answers: anything but 200 and 429 is a failure to look into.
  for (const e of entries.filter((entry) => entry.other + entry.errors > 0))
    console.error(`bench: WARNING ${e.scenario} ${e.system}: ${e.other} responses other than 200/429, ${e.errors} errors`);

  const targets = checkTargets(entries);
  // A quick run's zipf mix is nearly all first contacts, and its turns a fraction of a second: it shows the harness works.
  const caveat = args.quick ? " (--quick: a smoke test, too short to judge them by)" : "";
  if (targets.length > 0) console.log(`\ntargets of this-project in this run${caveat}`);
  for (const check of targets) {
    console.log(`${check.held ? "held    " : "NOT HELD"}  ${check.target}: ${check.required}; measured ${check.measured}`);
    if (check.note) console.log(`          ${check.note}`);
  }

  const results = {
    generatedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
    settings: { durationSeconds: args.durationSeconds, rounds: args.rounds, quick: args.quick, cores: cores ?? "shared", prices: PRICES },
    elapsedSeconds: (Date.now() - startedAt) / 1000,
    entries,
    targets,
  };
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(args.out, "chart.svg"), renderChart(entries));
  console.error(`bench: done in ${results.elapsedSeconds.toFixed(0)} s; wrote ${join(args.out, "results.json")} and chart.svg`);
}

await main();
