import { Hono } from "hono";
import { problemResponse } from "./errors";
import { type RateLimitVariables, rateLimit } from "./middleware";

/** The Worker: every request is rate-limited, then answered. */
export function createApp() {
  const app = new Hono<{ Bindings: Env; Variables: RateLimitVariables }>();

  app.use("*", rateLimit());

  // Until the proxy exists, an admitted request is answered here.
  app.all("*", (c) => c.json({ allowed: true, rules: c.get("rateLimit").rules }));

  app.onError((error) => {
    console.error(JSON.stringify({ event: "unhandled-error", error: String(error) }));
    return problemResponse({ status: 500, title: "Internal error", detail: "The rate limiter failed unexpectedly." });
  });
  return app;
}
