import { createApp } from "./app";

export { RateLimiter } from "./durable-object";

export default createApp();
