// The load generator, run as its own process so it does not share a CPU queue with the harness:
// autocannon against one URL, with the client key chosen per request by the scenario.
// Input: one JSON argument; output: one JSON line with the figures.
import autocannon from "autocannon";

interface LoadOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  keys: "hot" | "unique" | "zipf";
  zipfClients?: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as LoadOptions;

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
const sample = zipfSampler(options.zipfClients ?? 1000);
const keyFor = (): string => {
  if (options.keys === "unique") return `new-${run}-${counter++}`;
  if (options.keys === "zipf") return `zipf-${sample()}`;
  return "hot-client";
};

const startedAt = performance.now();
const cpuBefore = process.cpuUsage();
const result = await autocannon({
  url: options.url,
  connections: options.connections,
  duration: options.durationSeconds,
  requests: [
    { method: "GET", path: "/bench", setupRequest: (request) => ({ ...request, headers: { ...request.headers, "x-api-key": keyFor() } }) },
  ],
});
const elapsedSeconds = (performance.now() - startedAt) / 1000;
const cpu = process.cpuUsage(cpuBefore);
/** Share of one core the load generator used: near 1, it may be what limits the throughput. */
const loadCpuShare = (cpu.user + cpu.system) / 1e6 / elapsedSeconds;

const byStatus: Record<string, number> = {};
for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) byStatus[code] = (stats as { count: number }).count;
const admitted = byStatus["200"] ?? 0;
const denied = byStatus["429"] ?? 0;
console.log(
  JSON.stringify({
    requests: result.requests.total,
    requestsPerSecond: result.requests.total / elapsedSeconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    admitted,
    denied,
    other: result.requests.total - admitted - denied,
    errors: result.errors + result.timeouts,
    elapsedSeconds,
    loadCpuShare,
  }),
);
