/** What a user imports to put the limiter into their own Hono app. */
export { type Policy, PolicyError, parsePolicy, type Rule } from "./config";
export type { Decision, RuleVerdict } from "./decision";
export { RateLimiter } from "./durable-object";
export { identifyClient } from "./identity";
export { type RateLimitOptions, type RateLimitVariables, rateLimit } from "./middleware";
