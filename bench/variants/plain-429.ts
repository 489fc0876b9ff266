// The floor of a denied flood: a plain fetch handler answering the limiter's 429, prebuilt, to every request but the
// stats route (found the way ceiling-plain finds it). `npm run bench` measures it beside the denied flood.
import { statsResponse } from "../systems/shared.ts";
import { body, headers } from "./denial-429.ts";

export default {
  fetch(request: Request): Response {
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse();
    return new Response(body, { status: 429, headers });
  },
};
