// The classic Redis-and-Lua token bucket moved into a Durable Object: read the bucket
// from storage, decide, write it back and set an alarm, on every request.
import { DurableObject } from "cloudflare:workers";
import { admit, arrived, clientKey, counters, type Limit, statsResponse, tooMany } from "./shared.ts";

interface Bucket {
  tokens: number;
  updatedAtMs: number;
}

export class NaiveBucket extends DurableObject {
  async take(limit: Limit): Promise<boolean> {
    counters.doRequests++;
    const now = Date.now();
    const stored = await this.ctx.storage.get<Bucket>("bucket");
    counters.rowsRead++;
    const bucket = stored ?? { tokens: limit.burst, updatedAtMs: now };
    const tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.updatedAtMs) / 1000) * (limit.limit / limit.periodSeconds));
    const allowed = tokens >= 1;
    await this.ctx.storage.put<Bucket>("bucket", { tokens: allowed ? tokens - 1 : tokens, updatedAtMs: now });
    await this.ctx.storage.setAlarm(now + limit.periodSeconds * 1000);
    counters.rowsWritten += 2;
    return allowed;
  }

  async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}

interface Env {
  BUCKET: DurableObjectNamespace<NaiveBucket>;
  LIMIT: Limit;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    arrived(request);
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse();
    const allowed = await env.BUCKET.getByName(clientKey(request)).take(env.LIMIT);
    return allowed ? admit(request) : tooMany();
  },
};
