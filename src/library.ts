/** What a user imports to put the limiter into their own Hono app. */

export {
  asRateLimitBinding,
  createLimiter,
  type Limiter,
  type LimiterOptions,
  type LimitOptions,
  type RateLimitBinding,
  type SettleOptions,
} from "./core/create-limiter.ts";
export type { LimitResult, ListedReason } from "./core/limit-result.ts";
export { RateLimitService, type RateLimitServiceProps, type ServiceLimitOptions } from "./core/rate-limit-service.ts";
export { identifyClient } from "./identity/identify.ts";
export { RateLimitMetrics } from "./metrics/metrics-object.ts";
export type { FrontOptions } from "./middleware/front.ts";
export { type RateLimitMiddleware, type RateLimitOptions, type RateLimitVariables, rateLimit } from "./middleware/rate-limit.ts";
export type { Decision, RuleVerdict } from "./object/protocol.ts";
export { RateLimiter } from "./object/rate-limiter.ts";
export { PolicyError, parsePolicy } from "./policy/load.ts";
export type { PolicyInput } from "./policy/schema.ts";
export type { Policy, Rule } from "./policy/types.ts";
