import { createApp } from "./worker/app.ts";

export { RateLimiter } from "./object/rate-limiter.ts";

export default createApp();
