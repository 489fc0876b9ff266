// hono-noop-do plus one JSON log line per request, shaped like the limiter's decision line.
import { Hono } from "hono";
import type { Noop } from "./hono-noop-do.ts";

export { Noop } from "./hono-noop-do.ts";

const line = {
  event: "decision",
  clientId: "key:1d4c1234590e5dad9418f976f34cf3fd25f820dc782ff592928973cdc4b5feae",
  allowed: true,
  degraded: false,
  rules: [{ name: "bench", allowed: true, remaining: 999 }],
};

const app = new Hono<{ Bindings: { NOOP: DurableObjectNamespace<Noop> } }>();
app.use("*", async (c, next) => {
  await c.env.NOOP.getByName(c.req.header("x-api-key") ?? "anonymous").ping();
  console.log(JSON.stringify(line));
  await next();
});
app.all("*", (c) => c.text("ok"));

export default app;
