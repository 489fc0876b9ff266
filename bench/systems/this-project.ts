// The limiter as shipped, in library mode: the real rateLimit() middleware in front of the app
// (`front()`, as the shipped Worker has it) and RateLimiter object, answering admitted requests
// itself like every other system here (the proxy hop to an origin is the same for every limiter,
// so it is left out; the e2e tests cover it).
import { Hono } from "hono";
import { storageCounters } from "../../src/durable-object.ts";
import { rateLimit } from "../../src/library.ts";
import { admit, counters } from "./shared.ts";

export { RateLimiter } from "../../src/library.ts";

const app = new Hono();
app.get("/__bench/stats", (c) =>
  c.json({
    doRequests: storageCounters.calls,
    rowsWritten: storageCounters.rowsWritten + storageCounters.alarmsSet,
    rowsRead: 0,
    admitted: counters.admitted,
    flushes: storageCounters.flushes,
  }),
);
const limiter = rateLimit();
app.use("*", limiter);
app.all("*", () => admit());

export default limiter.front(app, { bypass: (request, path) => request.method === "GET" && path === "/__bench/stats" });
