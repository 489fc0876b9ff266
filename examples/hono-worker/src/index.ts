import { RateLimiter, rateLimit } from "edge-rate-limiter";
import { Hono } from "hono";

// The limiter's Durable Object class, bound as RATE_LIMITER in wrangler.jsonc.
export { RateLimiter };

interface User {
  id: string;
}

const app = new Hono<{ Bindings: Env; Variables: { user: User } }>();

// Not limited.
app.get("/", (c) => c.text("Hello! /api/* is rate-limited; this page is not."));

// Limited: 3 requests per minute per client (API key, Bearer token, else IP address).
app.use("/api/*", rateLimit({ policy: { rules: [{ name: "api", limit: 3, period: "1m" }] } }));
app.get("/api/hello", (c) => c.json({ hello: "world", remaining: c.get("rateLimit")?.rules[0]?.remaining }));

// The app's own auth (a stand-in: a real app verifies its session or JWT here), then 5 a minute per user, however
// often the user's token changes: the limiter keys on what the auth found.
app.use("/me/*", async (c, next) => {
  const id = c.req.header("x-user");
  if (!id) return c.json({ error: "sign in first" }, 401);
  c.set("user", { id });
  await next();
});
app.use(
  "/me/*",
  rateLimit<{ Variables: { user: User } }>({
    prefix: "me",
    policy: { rules: [{ name: "per-user", limit: 5, period: "1m" }] },
    key: (c) => c.get("user").id,
  }),
);
app.get("/me/profile", (c) => c.json({ user: c.get("user").id, remaining: c.get("rateLimit")?.rules[0]?.remaining }));

export default app;
