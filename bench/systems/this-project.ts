// The limiter as shipped, in library mode: the real rateLimit() middleware in front of the app
// (`front()`, as the shipped Worker has it) and RateLimiter object, answering admitted requests
// itself like every other system here (the proxy hop to an origin is the same for every limiter,
// so it is left out; the e2e tests cover it).
import { Hono } from "hono";
import { rateLimit } from "../../src/library.ts";
import { storageCounters } from "../../src/object/rate-limiter.ts";
import { admit, statsResponse } from "./shared.ts";

export { RateLimiter } from "../../src/library.ts";

const app = new Hono();
// The object's own counters (src/object/rate-limiter.ts): an RPC call per batch of checks, a row per write or alarm set.
app.get("/__bench/stats", () =>
  statsResponse({
    doRequests: storageCounters.calls,
    rowsWritten: storageCounters.rowsWritten + storageCounters.alarmsSet,
    flushes: storageCounters.flushes,
  }),
);
const limiter = rateLimit();
app.use("*", limiter);
app.all("*", () => admit());

export default limiter.front(app, { bypass: (request, path) => request.method === "GET" && path === "/__bench/stats" });
