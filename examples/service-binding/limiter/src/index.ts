/**
 * The limiter Worker: the package's RateLimitService entrypoint and the Durable Object it decides in, under the policy
 * in this Worker's wrangler.jsonc. Callers reach it only through service bindings; a request to its URL gets a 404.
 */

export { RateLimiter, RateLimitService } from "edge-rate-limiter";

export default {
  fetch(): Response {
    return new Response("This Worker answers its callers' service bindings (entrypoint RateLimitService), not requests.\n", {
      status: 404,
    });
  },
} satisfies ExportedHandler;
