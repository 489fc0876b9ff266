import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { identifyClient } from "../src/identity/identify.ts";
import type { RateLimiter } from "../src/object/rate-limiter.ts";
import type { ManualClock } from "./manual-clock.ts";

/** Puts the object of the client these headers identify on `clock`, before it decides anything. */
export async function useClockFor(headers: HeadersInit, clock: ManualClock): Promise<string> {
  const identity = await identifyClient(new Headers(headers));
  if (!("clientId" in identity)) throw new Error(identity.problem);
  await runInDurableObject(env.RATE_LIMITER.getByName(identity.clientId), (limiter: RateLimiter) => {
    limiter.clock = clock;
  });
  return identity.clientId;
}
