/** What a user imports to put the limiter into their own Hono app. */
export { type Policy, PolicyError, parsePolicy, type Rule } from "./config.ts";
export type { Decision, RuleVerdict } from "./decision.ts";
export { RateLimiter } from "./durable-object.ts";
export { identifyClient } from "./identity.ts";
export { type FrontOptions, type RateLimitMiddleware, type RateLimitOptions, type RateLimitVariables, rateLimit } from "./middleware.ts";
