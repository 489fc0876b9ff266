// Cloudflare's Workers Rate Limiting binding, as Miniflare implements it locally.
import { admit, arrived, clientKey, counters, statsResponse, tooMany } from "./shared.ts";

interface Env {
  LIMITER: { limit(options: { key: string }): Promise<{ success: boolean }> };
}

let decisions = 0;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    arrived(request);
    // Its object is Miniflare's and cannot be instrumented: one object request per decision, and one row written
    // per admitted request (its putBucket's INSERT OR REPLACE), by its design.
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse({ doRequests: decisions, rowsWritten: counters.admitted });
    decisions++;
    const { success } = await env.LIMITER.limit({ key: clientKey(request) });
    return success ? admit(request) : tooMany();
  },
};
