// This project with `rateLimit({ metrics: false })`: nothing counted, nothing flushed. `npm run bench` measures it in
// the hot key's rounds beside the shipped limiter, whose metrics are on, to show what counting and flushing cost.
import { thisProjectWorker } from "../systems/this-project-worker.ts";

export { RateLimiter, RateLimitMetrics } from "../systems/this-project-worker.ts";

export default thisProjectWorker({ metrics: false });
