/**
 * A Worker with no router: a plain fetch handler that sends a login code by SMS, at most 3 an hour per phone number
 * and 20 an hour per address, decided by edge-rate-limiter's createLimiter() from its npm package.
 */
import { createLimiter, type PolicyInput, RateLimiter } from "edge-rate-limiter";

// The limiter's Durable Object class, bound as RATE_LIMITER in wrangler.jsonc.
export { RateLimiter };

const policy = {
  rules: [
    { name: "per-phone", limit: 3, period: "1h" },
    { name: "per-address", limit: 20, period: "1h" },
  ],
} satisfies PolicyInput;

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== "POST" || url.pathname !== "/send-code") return new Response("POST /send-code?phone=…\n", { status: 404 });
    const phone = url.searchParams.get("phone");
    if (!phone) return Response.json({ error: "phone is required" }, { status: 400 });

    // Cheap to make per request: the policy is compiled once per value.
    const limiter = createLimiter({ namespace: env.RATE_LIMITER, policy });
    const address = request.headers.get("cf-connecting-ip") ?? "unknown";
    // Two keys, each under its own rule: the phone number and the caller's address. Two calls, so a code the second
    // refuses still counts against the first: ask the one most likely to refuse first.
    const byPhone = await limiter.limit(`phone:${phone}`, { rules: ["per-phone"], ctx });
    if (!byPhone.success) return tooMany(byPhone.retryAfterMs, byPhone.headers);
    const byAddress = await limiter.limit(`address:${address}`, { rules: ["per-address"], ctx });
    if (!byAddress.success) return tooMany(byAddress.retryAfterMs, byAddress.headers);

    // … send the SMS here …
    return Response.json({ sent: true, remaining: byPhone.remaining }, { headers: byPhone.headers });
  },
} satisfies ExportedHandler<Env>;

function tooMany(retryAfterMs: number, headers: Record<string, string>): Response {
  return Response.json({ error: "too many codes requested", retryAfterSeconds: Math.ceil(retryAfterMs / 1000) }, { status: 429, headers });
}
