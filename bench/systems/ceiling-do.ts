// The physical limit of any strongly consistent per-client decision: one no-op RPC to the client's object.
import { DurableObject } from "cloudflare:workers";
import { admit, arrived, clientKey, counters, statsResponse } from "./shared.ts";

export class Noop extends DurableObject {
  ping(): number {
    counters.doRequests++;
    return 1;
  }
}

interface Env {
  NOOP: DurableObjectNamespace<Noop>;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    arrived(request);
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse();
    await env.NOOP.getByName(clientKey(request)).ping();
    return admit(request);
  },
};
