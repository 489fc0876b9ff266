import { RateLimiter, rateLimit } from "edge-rate-limiter";
import { Hono } from "hono";

// The limiter's Durable Object class, bound as RATE_LIMITER in wrangler.jsonc.
export { RateLimiter };

const app = new Hono<{ Bindings: Env }>();

// Not limited.
app.get("/", (c) => c.text("Hello! /api/* is rate-limited; this page is not."));

// Limited: 3 requests per minute per client (API key, Bearer token, else IP address).
app.use("/api/*", rateLimit({ policy: { rules: [{ name: "api", limit: 3, period: "1m" }] } }));
app.get("/api/hello", (c) => c.json({ hello: "world", remaining: c.get("rateLimit")?.rules[0]?.remaining }));

export default app;
