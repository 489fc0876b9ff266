// hono-noop-do plus a timeout around the call: one setTimeout and clearTimeout per request.
import { Hono } from "hono";
import type { Noop } from "./hono-noop-do.ts";

export { Noop } from "./hono-noop-do.ts";

const app = new Hono<{ Bindings: { NOOP: DurableObjectNamespace<Noop> } }>();
app.use("*", async (c, next) => {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), 4000);
  });
  try {
    await Promise.race([c.env.NOOP.getByName(c.req.header("x-api-key") ?? "anonymous").ping(), timeout]);
  } finally {
    clearTimeout(timer);
  }
  await next();
});
app.all("*", (c) => c.text("ok"));

export default app;
