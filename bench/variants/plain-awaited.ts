// The floor of hot-admitted-core: ceiling-plain's handler shaped as core-limit's is (an async handler awaiting a
// promise of `{ success }` per request) with no limiter behind the promise. What any promise-returning `limit()`, as
// Cloudflare's binding's is, costs a plain fetch handler before it decides anything.
import { admit, clientKey, notingArrivals, statsResponse, tooMany } from "../systems/shared.ts";

/** A decision as `limit()` answers one, already made: the promise is all that is left. */
function decided(key: string): Promise<{ success: boolean }> {
  return Promise.resolve({ success: key.length > 0 });
}

export default {
  fetch: notingArrivals(async (request: Request): Promise<Response> => {
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse();
    const { success } = await decided(clientKey(request));
    return success ? admit(request) : tooMany();
  }),
};
