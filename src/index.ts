import { createApp } from "./worker/app.ts";

export { RateLimitService } from "./core/rate-limit-service.ts";
export { RateLimitMetrics } from "./metrics/metrics-object.ts";
export { RateLimiter } from "./object/rate-limiter.ts";

export default createApp();
