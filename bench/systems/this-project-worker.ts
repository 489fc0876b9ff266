// The limiter as shipped, in library mode, as the bench serves it: the real rateLimit() middleware in front of the app
// (`front()`, as the shipped Worker has it) and the RateLimiter and RateLimitMetrics objects, answering admitted
// requests itself like every other system here (the proxy hop to an origin is the same for every limiter, so it is
// left out; the e2e tests cover it). systems/this-project.ts serves it as shipped; variants/metrics-off.ts without
// metrics, to show what they cost; variants/denials-noted.ts with its denials recorded, for zipf-1000-hierarchy.
import { Hono } from "hono";
import { type RateLimitOptions, rateLimit, RateLimiter as ShippedRateLimiter } from "../../src/library.ts";
import { createMeter } from "../../src/object/meter.ts";
import { admit, notingArrivals, notingDenials, statsResponse } from "./shared.ts";

/** What this isolate's objects did: an RPC call per batch of decisions, a row per write or alarm set. */
const meter = createMeter();

/** The shipped object with the benchmark's meter installed: the product itself counts nothing. */
export class RateLimiter extends ShippedRateLimiter {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.meter = meter;
  }
}

export { RateLimitMetrics } from "../../src/library.ts";

/** What the benchmark records of this Worker besides what every system records. */
export interface RecordingOptions {
  /** Record every denial with its arrival (`notingDenials`). @default false */
  denials?: boolean;
}

/** The benchmarked Worker, its middleware made with `options`. */
export function thisProjectWorker(options: RateLimitOptions = {}, recording: RecordingOptions = {}) {
  const app = new Hono();
  app.get("/__bench/stats", () =>
    // A client's first decision is the one that sets its cleanup alarm: within a run, no client lives to need a second.
    statsResponse({
      doRequests: meter.calls,
      rowsWritten: meter.rowsWritten + meter.alarmsSet,
      flushes: meter.flushes,
      firstDecisions: meter.alarmsSet,
    }),
  );
  const limiter = rateLimit(options);
  app.use("*", limiter);
  app.all("*", (c) => admit(c.req.raw));

  const worker = limiter.front(app, { bypass: (request, path) => request.method === "GET" && path === "/__bench/stats" });
  return { fetch: notingArrivals(recording.denials ? notingDenials(worker.fetch) : worker.fetch) };
}
