// The benchmarked systems and scenarios: what each system is measured under, and how each is built and served by workerd.
import { fileURLToPath } from "node:url";
import { Embed } from "./capnp.ts";
import { HIERARCHY, type Hierarchy, hierarchyPolicy } from "./hierarchy.ts";

export const SYSTEM_NAMES = [
  "ceiling-plain",
  "ceiling-do",
  "this-project",
  "naive-do",
  "hono-rate-limiter",
  "cf-ratelimit-binding",
] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

/** The limit every system is given for a scenario. */
export interface Limit {
  limit: number;
  periodSeconds: number;
  burst: number;
}

/** What each system is measured under: the traffic, the limit every system is given, the connections. */
export interface Scenario {
  name: string;
  keys: "hot" | "unique" | "zipf" | "flood";
  /** For `keys: "flood"`: how many clients the requests go to, in turn, each flooded past its limit. */
  floodKeys?: number;
  limit: Limit;
  connections: number;
  /**
   * Whether exactness both ways against burst + rate × elapsed is the point of this scenario: over-admission in any
   * interval of each client's history, and what was admitted against what the bound allows (under-admission).
   */
  measuresAccuracy?: boolean;
  /**
   * Worker isolates the load is spread over: as many services of the same Worker in one workerd, each on its own
   * socket, all bound to the first one's Durable Object namespace. @default 1
   */
  isolates?: number;
  /** The systems measured, when not every one is. */
  systems?: readonly SystemName[];
  /**
   * Orgs the clients belong to, each request naming its client's in the `x-org` header (`orgOf` in hierarchy.ts):
   * what zipf-1000-hierarchy's org rule counts by. Every system of the scenario gets the same requests.
   */
  orgs?: number;
}

/** Systems measured across several isolates: the ceilings and this project (the peers have nothing to share there). */
const SPREAD_SYSTEMS: readonly SystemName[] = ["ceiling-plain", "ceiling-do", "this-project"];
const ROOMY: Limit = { limit: 1_000_000, periodSeconds: 1, burst: 1_000_000 };
const ZIPF_LIMIT: Limit = { limit: 100, periodSeconds: 60, burst: 100 };
const ACCURACY_LIMIT: Limit = { limit: 100, periodSeconds: 10, burst: 100 };
/** A rule that refills slowly, as most real policies do (per hour, per day): a flood spends each client's burst. */
const SLOW_LIMIT: Limit = { limit: 20, periodSeconds: 3600, burst: 20 };

export const SCENARIOS: Scenario[] = [
  { name: "hot-admitted", keys: "hot", connections: 32, limit: ROOMY },
  { name: "hot-denied", keys: "hot", connections: 32, limit: { limit: 1, periodSeconds: 3600, burst: 1 } },
  { name: "new-client", keys: "unique", connections: 32, limit: { limit: 100, periodSeconds: 60, burst: 100 } },
  { name: "zipf-1000", keys: "zipf", connections: 32, limit: ZIPF_LIMIT, orgs: HIERARCHY.orgs },
  { name: "accuracy", keys: "hot", connections: 64, limit: ACCURACY_LIMIT, measuresAccuracy: true },
  { name: "hot-admitted-4-isolates", keys: "hot", connections: 32, limit: ROOMY, isolates: 4, systems: SPREAD_SYSTEMS },
  {
    name: "accuracy-4-isolates",
    keys: "hot",
    connections: 64,
    limit: ACCURACY_LIMIT,
    measuresAccuracy: true,
    isolates: 4,
    systems: SPREAD_SYSTEMS,
  },
  { name: "zipf-1000-4-isolates", keys: "zipf", connections: 32, limit: ZIPF_LIMIT, isolates: 4, systems: SPREAD_SYSTEMS },
  // 40 clients, each flooded past its burst of a slow rule: every one should be admitted its burst, no more, no less.
  {
    name: "slow-flood",
    keys: "flood",
    floodKeys: 40,
    connections: 24,
    limit: SLOW_LIMIT,
    measuresAccuracy: true,
    systems: ["this-project", "naive-do", "hono-rate-limiter"],
  },
  {
    name: "slow-flood-4-isolates",
    keys: "flood",
    floodKeys: 40,
    connections: 24,
    limit: SLOW_LIMIT,
    measuresAccuracy: true,
    isolates: 4,
    systems: ["this-project"],
  },
];

const COMPATIBILITY_DATE = "2026-11-01";
const MINIFLARE_WORKERS = fileURLToPath(new URL("../node_modules/miniflare/dist/src/workers/", import.meta.url));

interface Parts {
  bindings: object[];
  durableObjectNamespaces?: object[];
  extraServices?: object[];
  extensions?: object[];
}

/** How a system is served for a scenario: the scenario's limit, and what a contender changes in this project's policy. */
interface ServedOptions {
  limit: Limit;
  groupCommitMs?: number | undefined;
  /** A global rule added to this project's policy, with this limit per second. */
  globalLimitPerSecond?: number | undefined;
  /** The org and global rules added to this project's policy, and the org dimension they need. */
  hierarchy?: Hierarchy | undefined;
}

/** This project's policy: the scenario's client rule, and whatever the contender adds to it. */
function thisProjectPolicy(options: ServedOptions): object {
  const { limit, groupCommitMs, globalLimitPerSecond, hierarchy } = options;
  const rules: object[] = [{ name: "bench", limit: limit.limit, period: limit.periodSeconds, burst: limit.burst }];
  if (globalLimitPerSecond !== undefined) rules.push({ name: "bench-global", limit: globalLimitPerSecond, period: 1, scope: "global" });
  const added = hierarchy === undefined ? undefined : hierarchyPolicy(hierarchy);
  return {
    ...(added ? { dimensions: added.dimensions } : {}),
    rules: [...rules, ...(added?.rules ?? [])],
    ...(groupCommitMs === undefined ? {} : { groupCommitMs }),
  };
}

/** What the main worker of a system binds, and what else it needs. */
function partsOf(system: SystemName, options: ServedOptions): Parts {
  const { limit } = options;
  const origin = { name: "ORIGIN", service: { name: "origin" } };
  const limitBinding = { name: "LIMIT", json: JSON.stringify(limit) };
  switch (system) {
    case "ceiling-plain":
      return { bindings: [] };
    case "ceiling-do":
      return {
        bindings: [{ name: "NOOP", durableObjectNamespace: { className: "Noop" } }],
        durableObjectNamespaces: [{ className: "Noop", uniqueKey: "bench-noop", enableSql: true }],
      };
    case "naive-do":
      return {
        bindings: [{ name: "BUCKET", durableObjectNamespace: { className: "NaiveBucket" } }, origin, limitBinding],
        durableObjectNamespaces: [{ className: "NaiveBucket", uniqueKey: "bench-naive", enableSql: true }],
      };
    case "hono-rate-limiter":
      return {
        bindings: [{ name: "CACHE", durableObjectNamespace: { className: "CountingRateLimiter" } }, origin, limitBinding],
        durableObjectNamespaces: [{ className: "CountingRateLimiter", uniqueKey: "bench-hono", enableSql: true }],
      };
    case "this-project": {
      const policy = thisProjectPolicy(options);
      return {
        bindings: [
          { name: "RATE_LIMITER", durableObjectNamespace: { className: "RateLimiter" } },
          // As wrangler.toml binds it: each isolate flushes its counts there every 10 s.
          { name: "RATE_LIMIT_METRICS", durableObjectNamespace: { className: "RateLimitMetrics" } },
          origin,
          { name: "RATE_LIMIT_POLICY", json: JSON.stringify(policy) },
          { name: "ORIGIN_URL", text: "" },
          { name: "ORIGIN_TIMEOUT_SECONDS", text: "30" },
          { name: "ADMIN_PREFIX", text: "/_ratelimit" },
        ],
        durableObjectNamespaces: [
          { className: "RateLimiter", uniqueKey: "bench-rate-limiter", enableSql: true },
          { className: "RateLimitMetrics", uniqueKey: "bench-rate-limit-metrics", enableSql: true },
        ],
      };
    }
    case "cf-ratelimit-binding": {
      // Miniflare's own implementation: a wrapped binding in front of one SQLite-backed object per namespace.
      const period = limit.periodSeconds <= 10 ? 10 : 60;
      const limitPerPeriod = Math.max(1, Math.round((limit.limit * period) / limit.periodSeconds));
      return {
        bindings: [
          {
            name: "LIMITER",
            wrapped: {
              moduleName: "cloudflare-internal:ratelimit:module",
              innerBindings: [
                {
                  name: "fetcher",
                  service: { name: "ratelimit:ns:entry", props: { json: JSON.stringify({ MINIFLARE_NAMESPACE: "1001" }) } },
                },
                { name: "limit", json: String(limitPerPeriod) },
                { name: "period", json: String(period) },
              ],
            },
          },
          origin,
        ],
        extensions: [
          {
            modules: [
              { name: "miniflare:shared", esModule: new Embed(`${MINIFLARE_WORKERS}shared/index.worker.js`) },
              { name: "miniflare:zod", esModule: new Embed(`${MINIFLARE_WORKERS}shared/zod.worker.js`) },
            ],
          },
          {
            modules: [
              {
                name: "cloudflare-internal:ratelimit:module",
                esModule: new Embed(`${MINIFLARE_WORKERS}ratelimit/ratelimit.worker.js`),
                internal: true,
              },
            ],
          },
        ],
        extraServices: [
          {
            name: "ratelimit:ns:entry",
            worker: {
              compatibilityDate: "2023-07-24",
              modules: [{ name: "object-entry.worker.js", esModule: new Embed(`${MINIFLARE_WORKERS}shared/object-entry.worker.js`) }],
              bindings: [
                { name: "MINIFLARE_OBJECT", durableObjectNamespace: { serviceName: "ratelimit:ns", className: "RateLimiterObject" } },
              ],
            },
          },
          {
            name: "ratelimit:ns",
            worker: {
              compatibilityDate: "2023-07-24",
              compatibilityFlags: ["nodejs_compat", "experimental"],
              modules: [
                { name: "ratelimit-object.worker.js", esModule: new Embed(`${MINIFLARE_WORKERS}ratelimit/ratelimit-object.worker.js`) },
              ],
              durableObjectNamespaces: [{ className: "RateLimiterObject", uniqueKey: "miniflare-RateLimiterObject", enableSql: true }],
              durableObjectStorage: { localDisk: "storage" },
              bindings: [{ name: "MINIFLARE_LOOPBACK", service: { name: "origin" } }],
            },
          },
        ],
      };
    }
  }
}

/**
 * The workerd config that serves `system` from `bundlePath` on `ports` (one Worker isolate per port, the first of
 * them holding the Durable Objects), with storage under `storageDir`.
 */
export function systemConfig(
  system: SystemName,
  options: ServedOptions & {
    bundlePath: string;
    originPath: string;
    ports: readonly number[];
    storageDir: string;
  },
): object {
  const parts = partsOf(system, options);
  // The other isolates bind the first one's namespace: `durableObjectNamespace` names the service that defines it.
  const frontBindings = parts.bindings.map((binding) =>
    "durableObjectNamespace" in binding
      ? { ...binding, durableObjectNamespace: { ...(binding.durableObjectNamespace as object), serviceName: "main" } }
      : binding,
  );
  const fronts = options.ports.slice(1).map((_, index) => ({
    name: `front-${index + 1}`,
    worker: {
      modules: [{ name: "index.js", esModule: new Embed(options.bundlePath) }],
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: frontBindings,
    },
  }));
  return {
    services: [
      {
        name: "main",
        worker: {
          modules: [{ name: "index.js", esModule: new Embed(options.bundlePath) }],
          compatibilityDate: COMPATIBILITY_DATE,
          bindings: parts.bindings,
          durableObjectNamespaces: parts.durableObjectNamespaces,
          durableObjectStorage: parts.durableObjectNamespaces ? { localDisk: "storage" } : undefined,
        },
      },
      ...fronts,
      {
        name: "origin",
        worker: { modules: [{ name: "origin.js", esModule: new Embed(options.originPath) }], compatibilityDate: COMPATIBILITY_DATE },
      },
      { name: "storage", disk: { path: options.storageDir, writable: true } },
      ...(parts.extraServices ?? []),
    ],
    sockets: options.ports.map((port, index) => ({
      name: `http-${index}`,
      address: `127.0.0.1:${port}`,
      http: {},
      service: { name: index === 0 ? "main" : `front-${index}` },
    })),
    extensions: parts.extensions,
  };
}
