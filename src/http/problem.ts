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

/** The 500 of a limiter whose configuration is wrong: `detail` names the field and what to fix. Logged by the caller. */
export function misconfiguredResponse(detail: string): Response {
  return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail });
}
