// hono-rate-limiter 0.4 with @hono-rate-limiter/cloudflare's DurableObjectStore, as its README sets it up.
import { DurableObjectRateLimiter, DurableObjectStore } from "@hono-rate-limiter/cloudflare";
import { Hono } from "hono";
import { rateLimiter } from "hono-rate-limiter";
import { admit, clientKey, counters, type Limit, notingArrivals, statsResponse } from "./shared.ts";

/** The store's own object, with its storage calls counted for the cost figures. */
export class CountingRateLimiter extends DurableObjectRateLimiter {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    const counted = new Proxy(ctx.storage, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (property === "put" || property === "setAlarm" || property === "delete") counters.rowsWritten++;
          if (property === "get" || property === "getAlarm") counters.rowsRead++;
          return value.apply(target, args);
        };
      },
    });
    // The runtime insists on the real state for the constructor; the store reads `this.ctx.storage` afterwards.
    Object.defineProperty(this, "ctx", {
      value: new Proxy(ctx, { get: (target, property) => (property === "storage" ? counted : Reflect.get(target, property)) }),
    });
  }

  override async update(delta: number, windowMs: number) {
    counters.doRequests++;
    return super.update(delta, windowMs);
  }
}

interface Env {
  CACHE: DurableObjectNamespace<DurableObjectRateLimiter>;
  LIMIT: Limit;
}

const app = new Hono<{ Bindings: Env }>();
app.get("/__bench/stats", () => statsResponse());
app.use("*", (c, next) =>
  rateLimiter<{ Bindings: Env }>({
    windowMs: c.env.LIMIT.periodSeconds * 1000,
    limit: c.env.LIMIT.limit,
    standardHeaders: "draft-6",
    keyGenerator: (ctx) => clientKey(ctx.req.raw),
    store: new DurableObjectStore({ namespace: c.env.CACHE }),
  })(c, next),
);
app.all("*", (c) => admit(c.req.raw));

export default { fetch: notingArrivals(app.fetch) };
