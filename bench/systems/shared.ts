// What every benchmarked system shares: the scenario's limit, the client key, the origin and the counters.

/** The one limit of a scenario, given to every system as the LIMIT binding. */
export interface Limit {
  limit: number;
  periodSeconds: number;
  burst: number;
}

/**
 * Counters of an isolate, read by the harness at /__bench/stats. `admitted` counts what the server admitted, including
 * requests still in flight when the load generator stops (it never sees their answers); `lastAdmittedAtMs` is when
 * the latest of them was admitted, on the server's clock, which the accuracy bound measures its interval by.
 */
export const counters = { doRequests: 0, rowsWritten: 0, rowsRead: 0, admitted: 0, lastAdmittedAtMs: 0 };

/** Most admission times remembered: every admission of a limiter in the accuracy scenario, not a ceiling's flood. */
const MAX_RECORDED = 20_000;

/** When each admission was made, on the server's clock, oldest first: the history the accuracy scenario checks. */
const admittedAtMs: number[] = [];

/** The answer to an admitted request, counted and recorded. */
export function admit(): Response {
  counters.admitted++;
  counters.lastAdmittedAtMs = Date.now();
  if (admittedAtMs.length < MAX_RECORDED) admittedAtMs.push(counters.lastAdmittedAtMs);
  return new Response("ok");
}

export function statsResponse(extra: Record<string, number> = {}): Response {
  // The server's clock when asked: the start of the interval a system's admissions are bounded over.
  const recorded = admittedAtMs.length < MAX_RECORDED ? admittedAtMs : null;
  return Response.json({ ...counters, nowMs: Date.now(), admittedAtMs: recorded, ...extra });
}

export function clientKey(request: Request): string {
  return request.headers.get("x-api-key") ?? "anonymous";
}

export function tooMany(): Response {
  return new Response("rate limited", { status: 429 });
}
