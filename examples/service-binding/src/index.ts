/**
 * A Worker written for Cloudflare's rate-limit binding (`[[ratelimits]]`), unchanged: only its wrangler.jsonc binds
 * RateLimitService in its place. Run it with the limiter: `npx wrangler dev -c wrangler.jsonc -c ../../wrangler.toml`.
 */

interface Env {
  MY_RATE_LIMITER: RateLimit;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const userId = new URL(request.url).searchParams.get("user") ?? "anonymous";
    const { success } = await env.MY_RATE_LIMITER.limit({ key: userId });
    if (!success) return new Response(`Too many checkouts for ${userId}: try again shortly.\n`, { status: 429 });
    return new Response(`Checked out for ${userId}.\n`);
  },
} satisfies ExportedHandler<Env>;
