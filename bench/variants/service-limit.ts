// service-binding: the same decisions as hot-admitted-core, through RateLimitService: the fetch handler calls the
// entrypoint over a service binding (`ctx.exports`, the Worker's own loopback binding to it) rather than
// createLimiter() in its own isolate, as a second Worker written for Cloudflare's rate-limit binding would.
import { RateLimitService } from "../../src/library.ts";
import { admit, clientKey, notingArrivals, statsResponse, tooMany } from "../systems/shared.ts";
import { RateLimiter } from "../systems/this-project-worker.ts";

export { RateLimitMetrics } from "../systems/this-project-worker.ts";
export { RateLimiter, RateLimitService };

interface Loopback {
  exports: { RateLimitService: { limit(options: { key: string }): Promise<{ success: boolean }> } };
}

export default {
  fetch: notingArrivals(async (request: Request, _env: unknown, ctx: ExecutionContext): Promise<Response> => {
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse();
    const { success } = await (ctx as unknown as Loopback).exports.RateLimitService.limit({ key: clientKey(request) });
    return success ? admit(request) : tooMany();
  }),
};
