// hot-admitted-core: the limiter from any code, with no Hono to pay for: a plain fetch handler calling
// `createLimiter(...).limit(key)` (leases on, as by default), served with this project's bindings. `npm run bench`
// measures it in the hot key's rounds beside ceiling-plain: an exact limiter's own cost, against a Worker that answers
// directly.
import { createLimiter } from "../../src/library.ts";
import { admit, clientKey, notingArrivals, statsResponse, tooMany } from "../systems/shared.ts";
import { RateLimiter } from "../systems/this-project-worker.ts";

export { RateLimitMetrics } from "../systems/this-project-worker.ts";
export { RateLimiter };

interface CoreEnv {
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  RATE_LIMIT_POLICY: unknown;
}

export default {
  fetch: notingArrivals(async (request: Request, env: CoreEnv, ctx: ExecutionContext): Promise<Response> => {
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse();
    // Made per request, as an app would: the policy is compiled once per value.
    const limiter = createLimiter({ namespace: env.RATE_LIMITER, policy: env.RATE_LIMIT_POLICY });
    const { success } = await limiter.limit(clientKey(request), { ctx });
    return success ? admit(request) : tooMany();
  }),
};
