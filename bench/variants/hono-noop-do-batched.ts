// hono-noop-do with the limiter's CallBatcher: requests of one client that arrive while a call is in flight
// go together as the next call.
import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";
import { CallBatcher } from "../../src/object-client/call-batcher.ts";

export class Noop extends DurableObject {
  ping(): number {
    return 1;
  }

  pingMany(items: number[]): number[] {
    return items;
  }
}

const batcher = new CallBatcher<number, number>();
const app = new Hono<{ Bindings: { NOOP: DurableObjectNamespace<Noop> } }>();
app.use("*", async (c, next) => {
  const key = c.req.header("x-api-key") ?? "anonymous";
  const stub = () => c.env.NOOP.getByName(key);
  await batcher.call(key, 1, async (items) => (items.length === 1 ? [await stub().ping()] : stub().pingMany(items)), 4000);
  await next();
});
app.all("*", (c) => c.text("ok"));

export default app;
