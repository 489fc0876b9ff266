// The limiter as shipped: metrics on, flushed every 10 s to the RateLimitMetrics objects bound beside it.
import { thisProjectWorker } from "./this-project-worker.ts";

export { RateLimiter, RateLimitMetrics } from "./this-project-worker.ts";

export default thisProjectWorker();
