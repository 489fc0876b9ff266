// A Hono Worker making one no-op call to the client's object per request: the baseline the other
// hono-noop-do-* variants add one cost to (run with the ceiling-do system's bindings).
import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";

export class Noop extends DurableObject {
  ping(): number {
    return 1;
  }
}

const app = new Hono<{ Bindings: { NOOP: DurableObjectNamespace<Noop> } }>();
app.use("*", async (c, next) => {
  await c.env.NOOP.getByName(c.req.header("x-api-key") ?? "anonymous").ping();
  await next();
});
app.all("*", (c) => c.text("ok"));

export default app;
