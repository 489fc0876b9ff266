// The limiter as shipped, in library mode: the real rateLimit() middleware and RateLimiter
// object, answering admitted requests itself like every other system here (the proxy hop
// to an origin is the same for every limiter, so it is left out; the e2e tests cover it).
import { Hono } from "hono";
import { storageCounters } from "../../src/durable-object.ts";
import { rateLimit } from "../../src/library.ts";

export { RateLimiter } from "../../src/library.ts";

const app = new Hono();
app.get("/__bench/stats", (c) =>
  c.json({
    doRequests: storageCounters.calls,
    rowsWritten: storageCounters.rowsWritten + storageCounters.alarmsSet,
    rowsRead: 0,
    flushes: storageCounters.flushes,
  }),
);
app.use("*", rateLimit());
app.all("*", (c) => c.text("ok"));

export default app;
