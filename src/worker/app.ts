import { Hono } from "hono";
import { problemResponse } from "../http/problem.ts";
import { keyClientId } from "../identity/identify.ts";
import { type RateLimitVariables, rateLimit } from "../middleware/rate-limit.ts";
import { loadPolicy, PolicyError } from "../policy/schema.ts";
import type { Clock } from "../runtime/clock.ts";
import { executionContextOf } from "../runtime/execution-context.ts";
import { type AdminOptions, createAdminApp } from "./admin.ts";
import { proxyToOrigin } from "./proxy.ts";

const DEFAULT_ORIGIN_TIMEOUT_SECONDS = 30;
const DEFAULT_ADMIN_PREFIX = "/_ratelimit";

/** ORIGIN_TIMEOUT_SECONDS as ms, or undefined when it is not a positive number. A `--var` makes it a string. */
function originTimeoutMs(raw: unknown): number | undefined {
  if (raw === undefined || raw === "") return DEFAULT_ORIGIN_TIMEOUT_SECONDS * 1000;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** The ADMIN_TOKEN secret, when it is set: it is not in wrangler.toml, so not in the generated Env. */
function adminTokenOf(env: Env): string | undefined {
  const token: unknown = (env as unknown as Record<string, unknown>).ADMIN_TOKEN;
  return typeof token === "string" && token !== "" ? token : undefined;
}

function adminPrefixOf(env: Env): string {
  const prefix = env.ADMIN_PREFIX || DEFAULT_ADMIN_PREFIX;
  return prefix.replace(/\/+$/, "");
}

/** The admin API's token and prefix when it answers this path: only while ADMIN_TOKEN is set; otherwise admin paths are ordinary ones. */
function adminRouteOf(path: string, env: Env): { token: string; prefix: string } | undefined {
  const token = adminTokenOf(env);
  if (token === undefined) return undefined;
  const prefix = adminPrefixOf(env);
  return path === prefix || path.startsWith(`${prefix}/`) ? { token, prefix } : undefined;
}

/** Options of the Worker. */
export interface AppOptions {
  /** The Worker's clock for cached denials. Only tests set it: the Worker entry passes nothing. */
  clock?: Clock;
}

/**
 * The Worker: the admin API when enabled, then every request rate-limited and, if admitted, proxied to the
 * origin. A repeated denial is answered before the app routes the request: every path but the admin API's is limited.
 */
export function createApp(options: AppOptions = {}) {
  const app = new Hono<{ Bindings: Env; Variables: RateLimitVariables }>();
  // The admin app for the policy, token and prefix in force, built when one of them changes rather than per request.
  let admin: { options: AdminOptions; app: ReturnType<typeof createAdminApp> } | undefined;

  // Without ADMIN_TOKEN the admin paths are ordinary paths: limited and proxied like any other.
  app.use("*", async (c, next) => {
    const route = adminRouteOf(c.req.path, c.env);
    if (route === undefined) return next();
    const { token, prefix } = route;
    let policy: ReturnType<typeof loadPolicy>;
    try {
      policy = loadPolicy(c.env.RATE_LIMIT_POLICY);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail: error.message });
    }
    const namespace = c.env.RATE_LIMITER;
    const current = admin?.options;
    if (!admin || current?.policy !== policy || current.token !== token || current.prefix !== prefix || current.namespace !== namespace) {
      const adminOptions: AdminOptions = { policy, namespace, token, prefix };
      admin = { options: adminOptions, app: createAdminApp(adminOptions) };
    }
    return admin.app.fetch(c.req.raw, c.env, executionContextOf(c));
  });

  const limiter = rateLimit(options.clock ? { clock: options.clock } : {});
  app.use("*", limiter);

  app.all("*", async (c) => {
    const timeoutMs = originTimeoutMs(c.env.ORIGIN_TIMEOUT_SECONDS);
    if (timeoutMs === undefined) {
      console.error(JSON.stringify({ event: "config-invalid", field: "ORIGIN_TIMEOUT_SECONDS" }));
      return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail: "ORIGIN_TIMEOUT_SECONDS: must be a number > 0" });
    }
    // The origin never sees the admin token, even sent on an ordinary path. Compared by SHA-256, through the
    // hashes identity already remembers, so a client's Bearer key is not hashed again on every request.
    const token = adminTokenOf(c.env);
    const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
    const carriesAdminToken = token !== undefined && bearer !== undefined && (await keyClientId(bearer)) === (await keyClientId(token));
    return proxyToOrigin(c, {
      originUrl: c.env.ORIGIN_URL,
      origin: c.env.ORIGIN,
      timeoutMs,
      isInternalHeader: (name) => carriesAdminToken && name === "authorization",
    });
  });

  app.onError((error) => {
    console.error(JSON.stringify({ event: "unhandled-error", error: String(error) }));
    return problemResponse({ status: 500, title: "Internal error", detail: "The rate limiter failed unexpectedly." });
  });
  return limiter.front(app, { bypass: (_request, path, env) => adminRouteOf(path, env as Env) !== undefined });
}
