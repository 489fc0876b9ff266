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

/** Builds an `application/problem+json` response. */
export function problemResponse(problem: Problem, headers: HeadersInit = {}): Response {
  const body = { type: problem.type ?? "about:blank", ...problem };
  const response = new Response(JSON.stringify(body), { status: problem.status, headers });
  response.headers.set("Content-Type", "application/problem+json");
  return response;
}
