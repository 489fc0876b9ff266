// node bench/compare.ts: A/B runs of Worker variants, interleaved round by round so that the machine's drift hits
// every variant alike. Each variant is an entry file served with the bindings of one of the benchmark's systems:
//
//   node bench/compare.ts --scenario hot-denied --rounds 5 --duration 2 \
//     ceiling-plain=bench/systems/ceiling-plain.ts ceiling-plain:hono-429=bench/variants/hono-429.ts
//
// `<system>[:<label>]=<entry>`. Prints requests/s and workerd's CPU time per request (from /proc), median of the
// rounds; workerd and the load generator each run on a core of their own. Loopback only; stops everything it starts.
//
// `--allocations` also samples what the Worker allocates on the JavaScript heap (V8's sampling heap profiler
// through workerd's inspector, objects collected since included) and prints bytes per request: a figure that,
// unlike CPU time, hardly moves between runs. The profiler slows the Worker, so throughput is not comparable then.
//
// `--cpu-profile` samples where the Worker's JavaScript spends its time (V8's CPU profiler, every 100 µs) and prints,
// per variant over all its rounds, the functions with the most self time and their share of the samples.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { workerdConfig } from "./capnp.ts";
import { bundleWorker, freePort, median } from "./harness.ts";
import { SCENARIOS, SYSTEM_NAMES, type SystemName, systemConfig } from "./systems.ts";

const BENCH = fileURLToPath(new URL(".", import.meta.url));
const WORKERD = join(BENCH, "../node_modules/@cloudflare/workerd-linux-64/bin/workerd");
const BUILD = join(BENCH, ".build", "compare");

interface Variant {
  system: SystemName;
  label: string;
  entry: string;
}

function option(argv: string[], flag: string, fallback: string): string {
  const index = argv.indexOf(flag);
  return index >= 0 ? (argv[index + 1] ?? fallback) : fallback;
}

function parseVariants(argv: string[]): Variant[] {
  return argv
    .filter((arg) => arg.includes("="))
    .map((arg) => {
      const [head = "", entry = ""] = arg.split("=");
      const [system = "", label = system] = head.split(":");
      if (!(SYSTEM_NAMES as readonly string[]).includes(system))
        throw new Error(`unknown system ${system}: one of ${SYSTEM_NAMES.join(", ")}`);
      return { system: system as SystemName, label, entry };
    });
}

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** User + system CPU time of a process so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A Chrome DevTools Protocol session with workerd's inspector for one worker. */
async function inspect(url: string) {
  const socket = new WebSocket(url);
  let id = 0;
  const pending = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  };
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  return {
    send(method: string, params: object = {}): Promise<unknown> {
      id += 1;
      socket.send(JSON.stringify({ id, method, params }));
      const sent = id;
      return new Promise((resolve) => pending.set(sent, resolve));
    },
    close: () => socket.close(),
  };
}

interface ProfileNode {
  selfSize: number;
  children: ProfileNode[];
}

const allocatedBytes = (node: ProfileNode): number => node.children.reduce((total, child) => total + allocatedBytes(child), node.selfSize);

/** A V8 CPU profile: its nodes, and which node each sample was in. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
}

/** Samples per function (`name file:line`), added to `into`. */
function addSelfSamples(profile: CpuProfile, into: Map<string, number>): void {
  const names = new Map<number, string>();
  for (const { id, callFrame } of profile.nodes) {
    const file = callFrame.url.split("/").pop() ?? "";
    names.set(id, `${callFrame.functionName || "(anonymous)"} ${file}${file ? `:${callFrame.lineNumber + 1}` : ""}`);
  }
  for (const sample of profile.samples) {
    const name = names.get(sample) ?? "?";
    into.set(name, (into.get(name) ?? 0) + 1);
  }
}

async function measure(variant: Variant, scenario: string, seconds: number, allocations: boolean, selfSamples?: Map<string, number>) {
  const settings = SCENARIOS.find((candidate) => candidate.name === scenario);
  if (!settings) throw new Error(`unknown scenario ${scenario}: one of ${SCENARIOS.map((candidate) => candidate.name).join(", ")}`);
  const { limit, keys, connections } = settings;
  const port = await freePort();
  const storageDir = mkdtempSync(join(tmpdir(), "compare-"));
  const config = systemConfig(variant.system, {
    bundlePath: join(BUILD, `${variant.label}.js`),
    originPath: join(BUILD, "origin.js"),
    ports: [port],
    storageDir,
    limit,
  });
  const configPath = join(BUILD, `${variant.label}.capnp`);
  writeFileSync(configPath, workerdConfig(config, BUILD));
  const inspectorPort = allocations || selfSamples ? await freePort() : undefined;
  const inspectorFlags = inspectorPort === undefined ? [] : [`--inspector-addr=127.0.0.1:${inspectorPort}`];
  const server = spawn("taskset", ["--cpu-list", "0", WORKERD, "serve", configPath, "--experimental", ...inspectorFlags], {
    stdio: "ignore",
  });
  children.add(server);
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await (await fetch(`${url}/warm`, { headers: { "x-api-key": "warm-up" } })).arrayBuffer();
        break;
      } catch (error) {
        if (attempt > 300) throw error;
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    }
    for (let i = 0; i < 200; i++) await (await fetch(`${url}/warm`, { headers: { "x-api-key": `warm-up-${i % 5}` } })).arrayBuffer();
    const inspector = inspectorPort === undefined ? undefined : await inspect(`ws://127.0.0.1:${inspectorPort}/main`);
    if (allocations) {
      await inspector?.send("HeapProfiler.startSampling", {
        samplingInterval: 256,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
    if (selfSamples) {
      await inspector?.send("Profiler.enable");
      await inspector?.send("Profiler.setSamplingInterval", { interval: 100 });
      await inspector?.send("Profiler.start");
    }
    const before = cpuMs(server.pid ?? 0);
    const options = { url, connections, durationSeconds: seconds, keys };
    const load = spawn("taskset", ["--cpu-list", "1", process.execPath, join(BENCH, "load.ts"), JSON.stringify(options)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.add(load);
    let output = "";
    load.stdout?.on("data", (chunk) => {
      output += chunk;
    });
    await new Promise((resolve) => load.once("exit", resolve));
    children.delete(load);
    const result = JSON.parse(output.trim().split("\n").pop() ?? "{}") as {
      requests: number;
      sent: number;
      requestsPerSecond: number;
      other: number;
      errors: number;
      loadCpuShare: number;
    };
    // Per request sent: those in flight when the load stopped were served too (see load.ts).
    const cpuUsPerRequest = ((cpuMs(server.pid ?? 0) - before) * 1000) / Math.max(1, result.sent);
    const sampled = allocations
      ? ((await inspector?.send("HeapProfiler.stopSampling")) as { profile: { head: ProfileNode } } | undefined)
      : undefined;
    if (selfSamples) {
      const stopped = (await inspector?.send("Profiler.stop")) as { profile: CpuProfile } | undefined;
      if (stopped) addSelfSamples(stopped.profile, selfSamples);
    }
    inspector?.close();
    const bytesPerRequest = sampled ? allocatedBytes(sampled.profile.head) / Math.max(1, result.sent) : undefined;
    return { ...result, cpuUsPerRequest, bytesPerRequest };
  } finally {
    server.kill("SIGKILL");
    children.delete(server);
    rmSync(storageDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const scenario = option(argv, "--scenario", "hot-admitted");
  const rounds = Number(option(argv, "--rounds", "5"));
  const seconds = Number(option(argv, "--duration", "2"));
  const allocations = argv.includes("--allocations");
  const cpuProfile = argv.includes("--cpu-profile");
  const variants = parseVariants(argv);
  if (variants.length === 0) throw new Error("no variants: pass <system>[:<label>]=<entry.ts> ...");
  if (spawnSync("taskset", ["--version"]).status !== 0) throw new Error("compare needs taskset (util-linux)");

  mkdirSync(BUILD, { recursive: true });
  const entries = [...variants, { label: "origin", entry: join(BENCH, "systems/origin.ts") }];
  for (const { label, entry } of entries) await bundleWorker(entry, join(BUILD, `${label}.js`));

  const figures = new Map(
    variants.map((variant) => [
      variant.label,
      {
        rps: [] as number[],
        cpu: [] as number[],
        load: [] as number[],
        bytes: [] as number[],
        failed: 0,
        samples: new Map<string, number>(),
      },
    ]),
  );
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      const entry = figures.get(variant.label);
      const result = await measure(variant, scenario, seconds, allocations, cpuProfile ? entry?.samples : undefined);
      entry?.rps.push(result.requestsPerSecond);
      entry?.cpu.push(result.cpuUsPerRequest);
      entry?.load.push(result.loadCpuShare);
      if (result.bytesPerRequest !== undefined) entry?.bytes.push(result.bytesPerRequest);
      if (entry) entry.failed += result.other + result.errors;
      console.error(`round ${round + 1}/${rounds} ${variant.label}: ${result.requestsPerSecond.toFixed(0)} req/s`);
    }
  }
  const baseline = median(figures.get(variants[0]?.label ?? "")?.rps ?? []);
  console.log(`${scenario}, ${rounds} rounds of ${seconds} s; ratios to ${variants[0]?.label}`);
  for (const [label, { rps, cpu, load, bytes, failed, samples }] of figures) {
    const ratio = baseline > 0 ? median(rps) / baseline : 0;
    const allocated = bytes.length > 0 ? `  ${median(bytes).toFixed(0).padStart(5)} bytes allocated/request` : "";
    console.log(
      `${label.padEnd(28)} ${median(rps).toFixed(0).padStart(7)} req/s  x${ratio.toFixed(2)}  ${median(cpu).toFixed(0).padStart(5)} us CPU/request  load generator ${(median(load) * 100).toFixed(0)} % of its core  failed ${failed}${allocated}`,
    );
    const total = [...samples.values()].reduce((sum, count) => sum + count, 0);
    const top = [...samples].sort((a, b) => b[1] - a[1]).slice(0, 25);
    for (const [name, count] of top) console.log(`    ${((100 * count) / total).toFixed(1).padStart(5)} %  ${name}`);
  }
}

await main();
