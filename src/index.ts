import { createApp } from "./app.ts";

export { RateLimiter } from "./durable-object.ts";

export default createApp();
