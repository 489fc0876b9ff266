import { Hono } from "hono";
import { problemResponse } from "./errors.ts";
import { type RateLimitVariables, rateLimit } from "./middleware.ts";
import { proxyToOrigin } from "./proxy.ts";

const DEFAULT_ORIGIN_TIMEOUT_SECONDS = 30;

/** ORIGIN_TIMEOUT_SECONDS as ms, or undefined when it is not a positive number. A `--var` makes it a string. */
function originTimeoutMs(raw: unknown): number | undefined {
  if (raw === undefined || raw === "") return DEFAULT_ORIGIN_TIMEOUT_SECONDS * 1000;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** The Worker: every request is rate-limited, then, if admitted, proxied to the origin. */
export function createApp() {
  const app = new Hono<{ Bindings: Env; Variables: RateLimitVariables }>();

  app.use("*", rateLimit());

  app.all("*", (c) => {
    const timeoutMs = originTimeoutMs(c.env.ORIGIN_TIMEOUT_SECONDS);
    if (timeoutMs === undefined) {
      console.error(JSON.stringify({ event: "config-invalid", field: "ORIGIN_TIMEOUT_SECONDS" }));
      return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail: "ORIGIN_TIMEOUT_SECONDS: must be a number > 0" });
    }
    return proxyToOrigin(c, { originUrl: c.env.ORIGIN_URL, origin: c.env.ORIGIN, timeoutMs });
  });

  app.onError((error) => {
    console.error(JSON.stringify({ event: "unhandled-error", error: String(error) }));
    return problemResponse({ status: 500, title: "Internal error", detail: "The rate limiter failed unexpectedly." });
  });
  return app;
}
