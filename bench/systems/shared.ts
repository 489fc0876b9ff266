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

/** Most admissions remembered: every admission of a limiter in the accuracy scenario, not a ceiling's flood. */
const MAX_RECORDED = 20_000;

/** Each admission as [arrived, admitted, client key] on the server's clock: the history the accuracy scenarios check. */
const admissions: Array<[number, number, string]> = [];

/** When each request reached the Worker: its decision was made after this. */
const arrivals = new WeakMap<Request, number>();

/** Notes that a request has reached the Worker, at the top of its fetch handler. */
export function arrived(request: Request): void {
  arrivals.set(request, Date.now());
}

/** A Worker's fetch handler with each request's arrival noted before it runs. */
export function notingArrivals<Args extends unknown[]>(fetch: (request: Request, ...rest: Args) => Response | Promise<Response>) {
  return (request: Request, ...rest: Args) => {
    arrived(request);
    return fetch(request, ...rest);
  };
}

/** The answer to an admitted request, counted and recorded with its arrival. */
export function admit(request: Request): Response {
  counters.admitted++;
  counters.lastAdmittedAtMs = Date.now();
  if (admissions.length < MAX_RECORDED) admissions.push([arrivals.get(request) ?? 0, counters.lastAdmittedAtMs, clientKey(request)]);
  return new Response("ok");
}

export function statsResponse(extra: Record<string, number> = {}): Response {
  // The server's clock when asked: the start of the interval a system's admissions are bounded over.
  const recorded = admissions.length < MAX_RECORDED ? admissions : null;
  return Response.json({ ...counters, nowMs: Date.now(), admissions: recorded, ...extra });
}

export function clientKey(request: Request): string {
  return request.headers.get("x-api-key") ?? "anonymous";
}

export function tooMany(): Response {
  return new Response("rate limited", { status: 429 });
}
