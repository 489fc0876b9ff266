// The floor of a denied flood without Hono: a plain fetch handler answering the limiter's 429.
import { body, headers } from "./denial-429.ts";

export default {
  fetch(): Response {
    return new Response(body, { status: 429, headers });
  },
};
