// The upper bound for anything: a Worker answering directly, no limiter.
import { admit, arrived, statsResponse } from "./shared.ts";

export default {
  fetch(request: Request): Response {
    arrived(request);
    if (new URL(request.url).pathname === "/__bench/stats") return statsResponse();
    return admit(request);
  },
};
