// The load generator, run as its own process so it does not share a CPU queue with the harness:
// autocannon against one URL (or several, the connections spread over them), with the client key
// (and, in the zipf mix, the client's org) chosen per request by the scenario.
// Input: one JSON argument, or (without one) one JSON line per run on stdin, so that a benchmark
// run starts Node and autocannon once; output: one JSON line with the figures per run.
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import { ORG_HEADER, orgOf } from "./hierarchy.ts";

interface LoadOptions {
  /** One URL, or several that share the connections: one Worker isolate each. */
  url: string | string[];
  connections: number;
  durationSeconds: number;
  keys: "hot" | "unique" | "zipf" | "flood";
  zipfClients?: number;
  /** For `keys: "flood"`: the clients the requests go to, in turn. */
  floodKeys?: number;
  /** Orgs the clients belong to: each request names its client's org in ORG_HEADER (`orgOf`). None when unset. */
  orgs?: number;
}

/** Cumulative zipf(s = 1) weights over `n` clients: a few clients send most requests. */
function zipfSampler(n: number): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (let rank = 1; rank <= n; rank++) {
    total += 1 / rank;
    cumulative.push(total);
  }
  return () => {
    const target = Math.random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((cumulative[middle] ?? 0) < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

let counter = 0;
const run = process.pid.toString(36);

/**
 * One load run: autocannon for `durationSeconds` on each URL at once, the connections shared among them, with a key
 * per request as the scenario says. Counts are summed; p50 is the mean of the URLs' weighted by their requests, p99
 * the worst of theirs.
 */
async function loadOnce(options: LoadOptions) {
  const sample = zipfSampler(options.zipfClients ?? 1000);
  const keyFor = (): string => {
    if (options.keys === "unique") return `new-${run}-${counter++}`;
    if (options.keys === "zipf") return `zipf-${sample()}`;
    if (options.keys === "flood") return `flood-${counter++ % (options.floodKeys ?? 1)}`;
    return "hot-client";
  };

  const { orgs } = options;
  const clientHeaders = (): Record<string, string> => {
    const key = keyFor();
    return orgs === undefined ? { "x-api-key": key } : { "x-api-key": key, [ORG_HEADER]: orgOf(key, orgs) };
  };

  const urls = Array.isArray(options.url) ? options.url : [options.url];
  const startedAt = performance.now();
  const cpuBefore = process.cpuUsage();
  const results = await Promise.all(
    urls.map((url, index) =>
      autocannon({
        url,
        // The connections shared as evenly as they go: 32 over 4 URLs is 8 each.
        connections: Math.floor(options.connections / urls.length) + (index < options.connections % urls.length ? 1 : 0),
        duration: options.durationSeconds,
        // autocannon stops only on a sample tick: every 1 s by default, longer than a short turn.
        sampleInt: 100,
        requests: [
          {
            method: "GET",
            path: "/bench",
            setupRequest: (request) => ({ ...request, headers: { ...request.headers, ...clientHeaders() } }),
          },
        ],
      }),
    ),
  );
  const elapsedSeconds = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuBefore);

  const byStatus: Record<string, number> = {};
  for (const result of results)
    for (const [code, stats] of Object.entries(result.statusCodeStats ?? {}))
      byStatus[code] = (byStatus[code] ?? 0) + (stats as { count: number }).count;
  const admitted = byStatus["200"] ?? 0;
  const denied = byStatus["429"] ?? 0;
  const sum = (of: (result: (typeof results)[number]) => number) => results.reduce((total, result) => total + of(result), 0);
  const requests = sum((result) => result.requests.total);
  return {
    requests,
    /** Requests sent, answered or not: those still in flight when the load stops were decided all the same. */
    sent: sum((result) => result.requests.sent),
    requestsPerSecond: requests / elapsedSeconds,
    p50Ms: sum((result) => result.latency.p50 * result.requests.total) / Math.max(1, requests),
    p99Ms: Math.max(...results.map((result) => result.latency.p99)),
    admitted,
    denied,
    other: requests - admitted - denied,
    errors: sum((result) => result.errors + result.timeouts),
    elapsedSeconds,
    /** Share of one core the load generator used: near 1, it may be what limits the throughput. */
    loadCpuShare: (cpu.user + cpu.system) / 1e6 / elapsedSeconds,
  };
}

if (process.argv[2] !== undefined) {
  console.log(JSON.stringify(await loadOnce(JSON.parse(process.argv[2]) as LoadOptions)));
} else {
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== "") console.log(JSON.stringify(await loadOnce(JSON.parse(line) as LoadOptions)));
  }
}
