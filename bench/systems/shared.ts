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

/** Most admissions (and denials) remembered: every one of a limiter in the accuracy scenarios, not a ceiling's flood. */
const MAX_RECORDED = 20_000;

/** Each admission as [arrived, admitted, client key] on the server's clock: the history the accuracy scenarios check. */
const admissions: Array<[number, number, string]> = [];

/**
 * Each denial as [arrived, answered, client key], when the Worker notes them (`notingDenials`): what the hierarchy's
 * under-admission check reads. Undefined in a Worker that does not.
 */
let denials: Array<[number, number, string]> | undefined;

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

/**
 * A Worker's fetch handler with each of its 429s recorded with the request's arrival (see `notingArrivals`, which
 * goes around it), as `admit` records admissions. The await is a cost the Workers measured without it do not pay.
 */
export function notingDenials<Args extends unknown[]>(fetch: (request: Request, ...rest: Args) => Response | Promise<Response>) {
  const recorded: Array<[number, number, string]> = [];
  denials = recorded;
  return async (request: Request, ...rest: Args) => {
    const response = await fetch(request, ...rest);
    if (response.status === 429 && recorded.length < MAX_RECORDED)
      recorded.push([arrivals.get(request) ?? 0, Date.now(), clientKey(request)]);
    return response;
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
  const deniedRecorded = denials === undefined ? {} : { denials: denials.length < MAX_RECORDED ? denials : null };
  return Response.json({ ...counters, nowMs: Date.now(), admissions: recorded, ...deniedRecorded, ...extra });
}

export function clientKey(request: Request): string {
  return request.headers.get("x-api-key") ?? "anonymous";
}

export function tooMany(): Response {
  return new Response("rate limited", { status: 429 });
}
