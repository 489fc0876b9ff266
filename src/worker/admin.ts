import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import * as v from "valibot";
import { dashboardResponse } from "../dashboard/dashboard-response.ts";
import { operatorMisconfiguredResponse, problemResponse } from "../http/problem.ts";
import { credentialProblem } from "../identity/identify.ts";
import type { KeyHasher } from "../identity/secret.ts";
import { isolateCounters } from "../metrics/decision-counters.ts";
import { isolateMetricsFlusher, type MetricsSinks } from "../metrics/metrics-flusher.ts";
import type { MetricsReport, ReadOptions } from "../metrics/metrics-object.ts";
import { rangeNeedsSpans, readMetrics, STATS_RANGES, type StatsRange, statsOf } from "../metrics/metrics-report.ts";
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from "../metrics/prometheus.ts";
import { isolateDenialCache } from "../middleware/denials.ts";
import { forgetSharedDenials } from "../object-client/ask-object.ts";
import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import type { CompiledPolicy } from "../policy/compiled-policy.ts";
import { blockBodySchema, overrideSchema } from "../policy/override-schema.ts";
import { problemsOf, strictFields } from "../policy/schema-issues.ts";
import { VERSION } from "../version.ts";
import { adminAuthentication } from "./admin-auth.ts";
import { objectNamedBy } from "./admin-object-id.ts";
import type { AdminAccess } from "./env.ts";
import { blockedKeysOf, holdingKeysOf } from "./listed-keys.ts";
import { policyView } from "./policy-view.ts";

/** Largest admin request body accepted. */
export const MAX_ADMIN_BODY_BYTES = 16 * 1024;

/** What the admin API needs from the Worker. */
export interface AdminOptions {
  /** The compiled policy in force. */
  compiled: CompiledPolicy;
  namespace: RateLimiterNamespace;
  /** The admin token and where the API is mounted. */
  access: AdminAccess;
  /** Where the isolates' counts go, and /metrics and /stats read them. */
  metrics: MetricsSinks;
  /** How keys become client ids, as for requests. */
  keys: KeyHasher;
}

function badRequest(detail: string, errors: string[] = [detail]): Response {
  return problemResponse({ status: 400, title: "Bad admin request", detail, errors });
}

/** An admin request's JSON body parsed by `schema`, or the 400 naming each field that is wrong (`(body)` for the body). */
async function parsedBody<T>(request: Request, schema: v.GenericSchema<unknown, T>): Promise<{ data: T } | { problem: Response }> {
  let body: unknown;
  try {
    body = JSON.parse(await request.text());
  } catch {
    return { problem: badRequest("body: must be a JSON object") };
  }
  const parsed = v.safeParse(schema, body);
  if (parsed.success) return { data: parsed.output };
  const errors = problemsOf(parsed.issues, "(body)");
  return { problem: badRequest(errors[0] ?? "invalid body", errors) };
}

/** The body of `POST /clients/lookup`: the raw key, which only a body carries. */
const lookupSchema = strictFields({ key: v.string("must be the API key, a string") });

/**
 * The admin API, mounted under a prefix: health and the dashboard page without authentication; inspect, reset and
 * override one client, and the metrics (Prometheus text, or JSON for the dashboard), behind
 * `Authorization: Bearer <ADMIN_TOKEN>`.
 */
export function createAdminApp(options: AdminOptions) {
  const { compiled, namespace, access, metrics, keys } = options;
  const { policy } = compiled;
  const admin = new Hono<{ Variables: { clientId: string; dimension: string | undefined } }>().basePath(access.prefix);
  const clientOverride = overrideSchema(policy);
  const overrideFor = (dimension: string | undefined) => (dimension === undefined ? clientOverride : overrideSchema(policy, dimension));
  /**
   * What an object is asked to inspect: every client rule under the client's tier, or a dimension's value's rules
   * under its tier (the policy's `clients` names both by id).
   */
  const inspectRequestFor = (clientId: string, dimension?: string) => ({
    rules: dimension === undefined ? compiled.clientObjectRules : compiled.dimensionObjectRules(dimension),
    tier: policy.clients[clientId],
  });

  // Nothing the admin API answers may be kept by a cache on the way: it describes clients, and may carry errors.
  admin.use("*", async (c, next) => {
    await next();
    c.res.headers.set("Cache-Control", "no-store");
  });

  admin.get("/health", (c) => c.json({ status: "ok", version: VERSION }));
  // The page holds no secret: it asks for the token, and sends it to the routes below.
  admin.get("/dashboard", () => dashboardResponse());

  const authenticated = adminAuthentication(namespace, access, policy);
  // Everything but the routes above needs the token: a route added below is private unless it is moved up.
  admin.use("*", authenticated);

  // A key's client, found from the key in the body: hashed exactly as for requests, and answered with the id that
  // names it in the routes below. Before them, so that "lookup" is not taken for an {id}.
  admin.post(
    "/clients/lookup",
    bodyLimit({ maxSize: MAX_ADMIN_BODY_BYTES, onError: () => badRequest(`body: must be at most ${MAX_ADMIN_BODY_BYTES} bytes`) }),
    async (c) => {
      const parsed = await parsedBody(c.req.raw, lookupSchema);
      if ("problem" in parsed) return parsed.problem;
      const problem = credentialProblem("key", parsed.data.key);
      if (problem) return badRequest(problem);
      const clientId = await keys.clientId(parsed.data.key);
      const state = await namespace.getByName(clientId).inspect(inspectRequestFor(clientId));
      return c.json({ client: clientId, path: `${access.prefix}/clients/${encodeURIComponent(`id:${clientId}`)}`, ...state });
    },
  );

  const resolveClient = createMiddleware<{ Variables: { clientId: string; dimension: string | undefined } }>(async (c, next) => {
    const identity = objectNamedBy(c.req.param("id") ?? "", policy);
    if ("problem" in identity) return badRequest(identity.problem);
    c.set("clientId", identity.clientId);
    c.set("dimension", identity.dimension);
    await next();
  });
  admin.use("/clients/:id", resolveClient);
  admin.use("/clients/:id/*", resolveClient);
  for (const path of ["/clients/:id/override", "/clients/:id/block"]) {
    admin.use(
      path,
      bodyLimit({ maxSize: MAX_ADMIN_BODY_BYTES, onError: () => badRequest(`body: must be at most ${MAX_ADMIN_BODY_BYTES} bytes`) }),
    );
  }

  admin.get("/clients/:id", async (c) => {
    const clientId = c.get("clientId");
    const state = await namespace.getByName(clientId).inspect(inspectRequestFor(clientId, c.get("dimension")));
    return c.json({ client: clientId, ...state });
  });

  admin.post("/clients/:id/reset", async (c) => {
    const clientId = c.get("clientId");
    await namespace.getByName(clientId).reset();
    changed("admin-reset", clientId, namespace);
    return c.json({ client: clientId, reset: true });
  });

  admin.put("/clients/:id/override", async (c) => {
    const clientId = c.get("clientId");
    const parsed = await parsedBody(c.req.raw, overrideFor(c.get("dimension")));
    if ("problem" in parsed) return parsed.problem;
    const stub = namespace.getByName(clientId);
    await stub.setOverride(parsed.data);
    changed("admin-override", clientId, namespace);
    return c.json({ client: clientId, ...(await stub.inspect(inspectRequestFor(clientId, c.get("dimension")))) });
  });

  admin.delete("/clients/:id/override", async (c) => {
    const clientId = c.get("clientId");
    await namespace.getByName(clientId).clearOverride();
    changed("admin-override-removed", clientId, namespace);
    return c.json({ client: clientId, override: null });
  });

  admin.put("/clients/:id/block", async (c) => {
    const clientId = c.get("clientId");
    const parsed = await parsedBody(c.req.raw, blockBodySchema);
    if ("problem" in parsed) return parsed.problem;
    const stub = namespace.getByName(clientId);
    await stub.block(parsed.data.seconds);
    changed("admin-block", clientId, namespace);
    const state = await stub.inspect(inspectRequestFor(clientId, c.get("dimension")));
    // Listed by `GET /blocks` once this isolate's counts are read.
    if (state.blockedUntilMs !== null) isolateCounters.recordEnd("blocks", clientId, state.blockedUntilMs);
    return c.json({ client: clientId, ...state });
  });

  admin.delete("/clients/:id/block", async (c) => {
    const clientId = c.get("clientId");
    const stub = namespace.getByName(clientId);
    await stub.unblock();
    changed("admin-unblock", clientId, namespace);
    return c.json({ client: clientId, ...(await stub.inspect(inspectRequestFor(clientId, c.get("dimension")))) });
  });

  /** Every isolate's counts merged, this isolate's own sent first so that they are in it. */
  async function metricsReport(options: ReadOptions = {}): Promise<MetricsReport | Response> {
    if (!metrics.objects) {
      console.error(JSON.stringify({ event: "binding-missing", binding: "RATE_LIMIT_METRICS" }));
      return operatorMisconfiguredResponse(
        "RATE_LIMIT_METRICS: not bound; bind the RateLimitMetrics Durable Object class to read metrics (docs/metrics.md)",
      );
    }
    await isolateMetricsFlusher.flush(metrics);
    const report = await readMetrics(metrics.objects, options);
    if (!("missingShards" in report)) return report;
    console.error(JSON.stringify({ event: "metrics-read-failed", shards: report.missingShards, error: report.error }));
    return problemResponse(
      {
        status: 503,
        title: "Metrics unavailable",
        detail: `The metrics objects ${report.missingShards.join(", ")} did not answer; try again.`,
      },
      { "Retry-After": "5" },
    );
  }

  admin.get("/metrics", async (c) => {
    const report = await metricsReport();
    if (report instanceof Response) return report;
    return c.body(prometheusText(report), 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
  });

  admin.get("/stats", async (c) => {
    const range = c.req.query("range") ?? "1h";
    if (!Object.hasOwn(STATS_RANGES, range)) return badRequest(`range: must be one of ${Object.keys(STATS_RANGES).join(", ")}`);
    const report = await metricsReport({ spans: rangeNeedsSpans(range as StatsRange) });
    if (report instanceof Response) return report;
    return c.json(statsOf(report, Date.now(), range as StatsRange));
  });

  admin.get("/policy", (c) => c.json(policyView(policy, keys)));

  const listing = { namespace, policy, prefix: access.prefix, inspectRequestFor };

  // The keys blocked now: those the isolates saw blocked, each confirmed by its own object (it may have been unblocked
  // since: only the object knows). Latest-ending first.
  admin.get("/blocks", async (c) => {
    const report = await metricsReport();
    if (report instanceof Response) return report;
    const { keys, unreachable } = await blockedKeysOf(report.blocks, listing);
    return c.json({ generatedAtMs: Date.now(), blocks: keys, ...(unreachable.length > 0 ? { unreachable } : {}) });
  });

  // The keys holding leases granted to isolates, and charges held until their responses settle them, confirmed the same way.
  admin.get("/holdings", async (c) => {
    const report = await metricsReport();
    if (report instanceof Response) return report;
    const [leases, holds] = await Promise.all([
      holdingKeysOf(report.leases, listing, "leased"),
      holdingKeysOf(report.holds, listing, "held"),
    ]);
    const unreachable = [...new Set([...leases.unreachable, ...holds.unreachable])];
    return c.json({
      generatedAtMs: Date.now(),
      leases: leases.keys,
      holds: holds.keys,
      ...(unreachable.length > 0 ? { unreachable } : {}),
    });
  });

  admin.notFound(() => problemResponse({ status: 404, title: "Not Found", detail: "No such admin endpoint." }));
  return admin;
}

/**
 * After an admin change to a client, or to a dimension's object (an org's): its denials remembered in this isolate no
 * longer hold, and the change is logged.
 */
function changed(event: string, clientId: string, namespace: RateLimiterNamespace): void {
  isolateDenialCache.forgetClient(clientId);
  forgetSharedDenials(namespace, clientId);
  console.log(JSON.stringify({ event, clientId }));
}
