// hono-noop-do plus the five RateLimit headers set on the response after the handler, as the middleware does.
import { Hono } from "hono";
import type { Noop } from "./hono-noop-do.ts";

export { Noop } from "./hono-noop-do.ts";

const headers: Record<string, string> = {
  "RateLimit-Policy": '"bench";q=1000000;w=1',
  RateLimit: '"bench";r=999;t=1',
  "X-RateLimit-Limit": "1000000",
  "X-RateLimit-Remaining": "999",
  "X-RateLimit-Reset": "1",
};

const app = new Hono<{ Bindings: { NOOP: DurableObjectNamespace<Noop> } }>();
app.use("*", async (c, next) => {
  await c.env.NOOP.getByName(c.req.header("x-api-key") ?? "anonymous").ping();
  await next();
  for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
});
app.all("*", (c) => c.text("ok"));

export default app;
