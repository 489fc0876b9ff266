import { Hono } from "hono";
import { getPath as honoPathOf } from "hono/utils/url";
import { adminDisabledResponse } from "../dashboard/dashboard-response.ts";
import { misconfiguredResponse, problemResponse } from "../http/problem.ts";
import { type CanonicalPath, canonicalPath } from "../http/request-path.ts";
import { type KeyHasher, UNKEYED_HASHER } from "../identity/secret.ts";
import { isolateCounters } from "../metrics/decision-counters.ts";
import { metricsSinksOf } from "../metrics/metrics-flusher.ts";
import { keyHasherOf } from "../middleware/limiter-configuration.ts";
import { type RateLimitVariables, rateLimit } from "../middleware/rate-limit.ts";
import { type CompiledPolicy, loadCompiledPolicy } from "../policy/compiled-policy.ts";
import { PolicyError } from "../policy/load.ts";
import type { Clock } from "../runtime/clock.ts";
import { executionContextOf } from "../runtime/execution-context.ts";
import { createAdminApp } from "./admin.ts";
import { type AdminAccess, type VariableProblem, workerEnvOf } from "./env.ts";
import { proxyToOrigin } from "./proxy.ts";

/** Options of the Worker. */
export interface AppOptions {
  /** The Worker's clock for cached denials, leases and metrics. Only tests set it: the Worker entry passes nothing. */
  clock?: Clock;
  /**
   * Whether decisions are counted and flushed (`RateLimitOptions.metrics`). Only the benchmark turns them off.
   * @default true
   */
  metrics?: boolean;
}

/**
 * How the Worker routes a request: the admin API's paths as Hono reads them (they are never limited nor forwarded,
 * and a client id in them may hold an encoded slash, `id:ip:2001:db8::%2F64`), any other by its canonical path, or
 * refused when it has none.
 */
type Route = { kind: "admin"; path: string } | CanonicalPath;

/** Each request's route, worked out once: `front()`, Hono's router and the refusal below all ask for it. */
const routes = new WeakMap<Request, Route>();

function routeOf(request: Request, env: unknown): Route {
  let route = routes.get(request);
  if (!route) {
    const honoPath = honoPathOf(request);
    const access = env === undefined ? undefined : workerEnvOf(env as Env).admin;
    const isAdmin = access !== undefined && !("detail" in access) && access.isAdminPath(honoPath);
    route = isAdmin ? { kind: "admin", path: honoPath } : canonicalPath(new URL(request.url).pathname);
    routes.set(request, route);
  }
  return route;
}

/** A request's path as the Worker routes it (see `routeOf`); a refused one's as it came, since it is answered 400 first. */
function routedPathOf(request: Request, options?: { env?: unknown }): string {
  const route = routeOf(request, options?.env);
  return route.kind === "refused" ? new URL(request.url).pathname : route.path;
}

/** The 500 of a variable set wrongly, logged with the field. */
function variableProblem({ field, problem, detail }: VariableProblem): Response {
  console.error(JSON.stringify({ event: "config-invalid", field, problem }));
  return misconfiguredResponse(detail);
}

/**
 * The credential headers of a request that carry the admin token, by lower-case name: `Authorization` when any of
 * its credentials is the token (two headers, or `Bearer <token>, Basic …`, arrive as one list), and any API-key header
 * (`x-api-key` and the policy's `identity.keyHeaders`) whose value, or one of its values, is. Each candidate is
 * compared in constant time, by hash (`AdminAccess.isAdminKey`, which reuses the hashes identity remembers).
 */
async function headersCarryingAdminToken(headers: Headers, access: AdminAccess, env: Env): Promise<Set<string>> {
  const compiled = loadCompiledPolicy(env.RATE_LIMIT_POLICY);
  const hasher = keyHasherOf(env as unknown as Record<string, unknown>);
  // The limiter answered a bad secret already; plain SHA-256 compares as well, only without its remembered hashes.
  const keys = "detail" in hasher ? UNKEYED_HASHER : hasher;
  const keyHeaders = new Set(["x-api-key", ...(compiled instanceof PolicyError ? [] : compiled.policy.identity.keyHeaders)]);
  const carrying = new Set<string>();
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    // Each credential is `<scheme> <token>` or a bare token (RFC 9110 §11.6.2); the token is what is compared.
    const credentials = authorization.split(",").map((credential) => credential.trim().replace(/^[A-Za-z][\w!#$%&'*+.^`|~-]*\s+/, ""));
    if (await anyIsAdminKey(credentials, access, keys)) carrying.add("authorization");
  }
  for (const name of keyHeaders) {
    const value = headers.get(name);
    if (value !== null && (await anyIsAdminKey([value, ...value.split(",").map((part) => part.trim())], access, keys)))
      carrying.add(name.toLowerCase());
  }
  return carrying;
}

async function anyIsAdminKey(candidates: readonly string[], access: AdminAccess, keys: KeyHasher): Promise<boolean> {
  for (const candidate of new Set(candidates)) if (candidate !== "" && (await access.isAdminKey(candidate, keys))) return true;
  return false;
}

/**
 * The Worker: the admin API when enabled, then every request rate-limited and, if admitted, proxied to the
 * origin. A repeated denial is answered before the app routes the request: every path but the admin API's is limited.
 */
export function createApp(options: AppOptions = {}) {
  // Every request is routed, limited and forwarded by its canonical path (docs/configuration.md, Paths).
  const app = new Hono<{ Bindings: Env; Variables: RateLimitVariables }>({ getPath: routedPathOf });
  app.use("*", async (c, next) => {
    const route = routeOf(c.req.raw, c.env);
    if (route.kind !== "refused") return next();
    return problemResponse({
      status: 400,
      title: "Path refused",
      detail: `${route.problem}: the path has no one spelling an origin would agree on.`,
    });
  });
  // The admin app for the policy, access and namespace in force, built when one of them changes rather than per request.
  let admin:
    | {
        compiled: CompiledPolicy;
        access: AdminAccess;
        env: Env;
        keys: KeyHasher;
        app: ReturnType<typeof createAdminApp>;
      }
    | undefined;

  app.use("*", async (c, next) => {
    const access = workerEnvOf(c.env).admin;
    if (access !== undefined && "detail" in access) return variableProblem(access);
    if (access === undefined) return c.req.path === workerEnvOf(c.env).disabledDashboardPath ? adminDisabledResponse() : next();
    if (!access.isAdminPath(c.req.path)) return next();
    if (access.refused) return variableProblem(access.refused);
    const compiled = loadCompiledPolicy(c.env.RATE_LIMIT_POLICY);
    if (compiled instanceof PolicyError) return misconfiguredResponse(compiled.message);
    const keys = keyHasherOf(c.env as unknown as Record<string, unknown>);
    if ("detail" in keys) return misconfiguredResponse(keys.detail);
    if (!admin || admin.compiled !== compiled || admin.access !== access || admin.env !== c.env || admin.keys !== keys) {
      const metrics = metricsSinksOf(c.env);
      const app = createAdminApp({ compiled, namespace: c.env.RATE_LIMITER, access, metrics, keys });
      admin = { compiled, access, env: c.env, keys, app };
    }
    return admin.app.fetch(c.req.raw, c.env, executionContextOf(c));
  });

  const limiter = rateLimit({ ...(options.clock ? { clock: options.clock } : {}), metrics: options.metrics !== false });
  // The origin's answers are counted beside the decisions, and flushed with them.
  const originCounters = options.metrics === false ? undefined : isolateCounters;
  app.use("*", limiter);

  app.all("*", async (c) => {
    const { admin: access, origin, originTimeoutMs } = workerEnvOf(c.env);
    if (typeof originTimeoutMs !== "number") return variableProblem(originTimeoutMs);
    if ("detail" in origin) return variableProblem(origin);
    // The origin never sees the admin token, even sent on an ordinary path (docs/architecture.md, invariant 6).
    const internal =
      access === undefined || "detail" in access ? undefined : await headersCarryingAdminToken(c.req.raw.headers, access, c.env);
    return proxyToOrigin(c, {
      origin,
      timeoutMs: originTimeoutMs,
      ...(originCounters ? { onAnswered: (answer, seconds) => originCounters.recordOrigin(answer, seconds) } : {}),
      ...(internal && internal.size > 0 ? { isInternalHeader: (name: string) => internal.has(name) } : {}),
    });
  });

  app.onError((error) => {
    console.error(JSON.stringify({ event: "unhandled-error", error: String(error) }));
    return problemResponse({ status: 500, title: "Internal error", detail: "The rate limiter failed unexpectedly." });
  });
  return limiter.front(app, {
    // A misconfigured admin API is the app's to answer (500), never a cached denial's.
    bypass: (_request, path, env) => {
      const access = workerEnvOf(env as Env).admin;
      return access !== undefined && ("detail" in access || access.isAdminPath(path));
    },
  });
}
