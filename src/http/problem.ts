/** Problem details (RFC 9457) and the few problem types this limiter answers with. */

/** Problem type for a request over its quota, registered by the IETF RateLimit header draft. */
export const QUOTA_EXCEEDED_TYPE = "https://iana.org/assignments/http-problem-types#quota-exceeded";

/** An RFC 9457 problem: `type`, `title`, `status` and `detail`, plus extension members. */
export interface Problem {
  status: number;
  title: string;
  detail: string;
  /** Defaults to "about:blank", which RFC 9457 §4.2.1 defines as "the status code says it all". */
  type?: string;
  [extension: string]: unknown;
}

/** The JSON body of a problem. */
export function problemBody(problem: Problem): string {
  return JSON.stringify({ type: problem.type ?? "about:blank", ...problem });
}

/** The headers of a problem response: `headers` plus its content type. */
export function problemHeaders(headers: HeadersInit = {}): Headers {
  const all = new Headers(headers);
  all.set("Content-Type", "application/problem+json");
  return all;
}

/** Builds an `application/problem+json` response. */
export function problemResponse(problem: Problem, headers: HeadersInit = {}): Response {
  return new Response(problemBody(problem), { status: problem.status, headers: problemHeaders(headers) });
}

/** Misconfigurations this isolate has logged, by id: each once, so that a flood of requests logs it once. */
const loggedMisconfigurations = new Set<string>();

/**
 * A short, stable id of what is wrong (FNV-1a of `detail`, hex): the same misconfiguration has the same id in
 * every isolate, so a client can quote it and the operator find its log line.
 */
export function misconfigurationId(detail: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < detail.length; index++) hash = Math.imul(hash ^ detail.charCodeAt(index), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/**
 * The 500 of a limiter whose configuration is wrong. Clients are told only that, and an id to quote: what to fix
 * (`detail`, naming the field) goes to the log line `misconfigured` with that id, once per isolate, and to
 * `check-config`, where the operator reads it.
 * @example misconfiguredResponse("ORIGIN_URL: must be an absolute http(s) URL")
 */
export function misconfiguredResponse(detail: string): Response {
  const id = misconfigurationId(detail);
  if (!loggedMisconfigurations.has(id)) {
    if (loggedMisconfigurations.size >= 100) loggedMisconfigurations.clear();
    loggedMisconfigurations.add(id);
    console.error(JSON.stringify({ event: "misconfigured", id, detail }));
  }
  return problemResponse({
    status: 500,
    title: "Rate limiter misconfigured",
    detail: `The rate limiter is misconfigured; its operator finds what to fix in its logs, under "misconfigured" ${id}.`,
    misconfiguration: id,
  });
}

/** The 500 of a misconfiguration told to an authenticated operator (the admin API), with what to fix. */
export function operatorMisconfiguredResponse(detail: string): Response {
  return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail, misconfiguration: misconfigurationId(detail) });
}
