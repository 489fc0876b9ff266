import type { Context } from "hono";
import { problemResponse } from "../http/problem.ts";
import type { OriginAnswer } from "../metrics/tally.ts";
import { withTimeout } from "../runtime/timeout.ts";
import type { Origin } from "./env.ts";

/** Options of the proxy to the origin. */
export interface ProxyOptions {
  /** A base URL, to which the incoming path and query are appended, or a service binding. */
  origin: Origin;
  /**
   * How long to wait for the origin's response headers before answering 504. The body
   * then streams for as long as it takes.
   */
  timeoutMs: number;
  /** Request headers the origin must never see, such as the limiter's own credentials. */
  isInternalHeader?: (name: string, value: string) => boolean;
  /**
   * Told how each request was answered: the origin's status class with the seconds to its response headers (from
   * when the request body was sent), or the proxy's own 502 or 504. Not for a client's broken body (its 400).
   */
  onAnswered?: (answer: OriginAnswer, seconds?: number) => void;
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message, so a
 * proxy must not forward them. `Upgrade` is kept for WebSocket handshakes only.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** The origin's target URL for an incoming request: base path + incoming path, both queries. */
export function targetUrl(base: URL, incoming: URL): URL {
  const target = new URL(base);
  target.pathname = `${base.pathname.replace(/\/+$/, "")}${incoming.pathname}`;
  for (const [name, value] of incoming.searchParams) target.searchParams.append(name, value);
  // Keep the client's own spelling of the query when the base adds nothing to it.
  if (base.search === "") target.search = incoming.search;
  return target;
}

function isWebSocketUpgrade(headers: Headers): boolean {
  return headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The headers to send to the origin: the client's, minus hop-by-hop and internal ones, plus X-Forwarded-*. */
export function forwardedHeaders(request: Request, isInternalHeader: ProxyOptions["isInternalHeader"]): Headers {
  const incoming = request.headers;
  // workerd takes `Connection` off before the Worker sees it (docs/configuration.md, Origin and proxy): this holds
  // only where a runtime shows it.
  const listedInConnection = new Set(
    (incoming.get("connection") ?? "")
      .split(",")
      .map((token) => token.trim().toLowerCase())
      .filter(Boolean),
  );
  const webSocket = isWebSocketUpgrade(incoming);
  const headers = new Headers();
  for (const [name, value] of incoming) {
    const isHopByHop = listedInConnection.has(name) || HOP_BY_HOP.has(name);
    if (isHopByHop && !(webSocket && name === "upgrade")) continue;
    if (isInternalHeader?.(name, value)) continue;
    headers.append(name, value);
  }
  if (webSocket) headers.set("Connection", "Upgrade");

  const url = new URL(request.url);
  const clientIp = incoming.get("cf-connecting-ip");
  const previous = incoming.get("x-forwarded-for");
  if (clientIp) headers.set("X-Forwarded-For", previous ? `${previous}, ${clientIp}` : clientIp);
  headers.set("X-Forwarded-Proto", url.protocol.replace(/:$/, ""));
  headers.set("X-Forwarded-Host", incoming.get("host") ?? url.host);
  return headers;
}

/** The class of an origin's status: fetch answers 200 to 599 (a 101 upgrade counts as 2xx: the origin accepted it). */
function statusClassOf(status: number): OriginAnswer {
  if (status < 300) return "2xx";
  if (status < 400) return "3xx";
  return status < 500 ? "4xx" : "5xx";
}

function originProblem(status: 502 | 504, detail: string): Response {
  return problemResponse({ status, title: status === 502 ? "Bad Gateway" : "Gateway Timeout", detail });
}

class OriginTimeout extends Error {}

/** Methods a proxy may send again after a failure (RFC 9110 §9.2.2): the origin's state ends the same either way. */
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/**
 * Whether a failed `fetch` may be sent once more: workerd marks a connection that failed before any response byte
 * `retryable`, such as a kept-alive connection the origin closed just as the request reused it. Only a request
 * without a body, whose method is idempotent, and only once.
 */
function mayRetry(request: Request, hasBody: boolean, error: unknown): boolean {
  const retryable = typeof error === "object" && error !== null && (error as { retryable?: unknown }).retryable === true;
  return retryable && !hasBody && IDEMPOTENT_METHODS.has(request.method);
}

/**
 * Forwards a request to the origin and streams the answer back unchanged. Bodies
 * stream both ways without buffering; redirects go back to the client; WebSocket
 * upgrades are passed through once admitted.
 */
export async function proxyToOrigin(c: Context, options: ProxyOptions): Promise<Response> {
  const request = c.req.raw;
  const incoming = new URL(request.url);
  // The path the rules matched is the path the origin receives: the app's routed path (canonical in the shipped Worker).
  incoming.pathname = c.req.path;
  const { origin, timeoutMs } = options;
  const target = "url" in origin ? targetUrl(origin.url, incoming) : incoming;
  const send = (forwarded: Request) => ("url" in origin ? fetch(forwarded) : origin.binding.fetch(forwarded));
  const headers = forwardedHeaders(request, options.isInternalHeader);

  // A body declared empty (`Content-Length: 0`, as clients send for a bare DELETE) is sent as "", which a retry can
  // send again; any other body goes through a pipe whose end says when the client has sent all of it: the origin
  // answers after that. Of the length the client declared, if any, so that the origin still gets a Content-Length.
  const declaredLength = Number(request.headers.get("content-length") ?? Number.NaN);
  const mayHaveBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  const hasBody = mayHaveBody && declaredLength !== 0;
  const pipe = !hasBody
    ? undefined
    : Number.isSafeInteger(declaredLength) && declaredLength >= 0
      ? new FixedLengthStream(declaredLength)
      : new IdentityTransformStream();
  // Whose failure a failed fetch is: the client's when its body broke first (cut short, malformed chunks), since the
  // origin then only sees a body that stopped; the origin's when the fetch failed first and the pipe after it.
  let firstFailure: "client body" | "origin" | undefined;
  const bodySent =
    pipe && request.body
      ? request.body.pipeTo(pipe.writable).catch(() => {
          firstFailure ??= "client body";
        })
      : Promise.resolve();
  /** When the wait for the origin's answer began: once the body was sent. */
  let waitStartedMs = 0;
  const startedMs = Date.now();

  /** One request to the origin: its response, or the timeout once the body is sent and `timeoutMs` has passed. */
  const attempt = (waitMs: number): Promise<Response> => {
    const abort = new AbortController();
    const answered = send(
      new Request(target, {
        method: request.method,
        headers,
        body: pipe ? pipe.readable : mayHaveBody ? "" : null,
        redirect: "manual",
        signal: abort.signal,
      }),
    );
    // Until the body is sent only the origin's answer (an early 413, or a failure) ends the wait; then timeoutMs does.
    const afterBody = bodySent.then(() => {
      waitStartedMs ||= Date.now();
      return withTimeout(answered, waitMs, () => {
        abort.abort();
        return new OriginTimeout();
      });
    });
    return Promise.race([answered, afterBody]);
  };

  // The timeout is the wait for the response headers once the request body has been sent: neither a slow upload
  // nor a large download counts against it. A retry waits for what is left of it.
  let upstream: Response;
  try {
    try {
      upstream = await attempt(timeoutMs);
    } catch (error) {
      if (!mayRetry(request, hasBody, error)) throw error;
      console.log(JSON.stringify({ event: "origin-retried", path: incoming.pathname, error: String(error) }));
      upstream = await attempt(Math.max(0, timeoutMs - (Date.now() - waitStartedMs)));
    }
  } catch (error) {
    if (error instanceof OriginTimeout) {
      options.onAnswered?.("timeout");
      console.error(JSON.stringify({ event: "origin-timeout", timeoutMs, path: incoming.pathname }));
      return originProblem(504, `The origin did not answer within ${timeoutMs / 1000} s.`);
    }
    if (firstFailure === "client body") {
      console.error(JSON.stringify({ event: "client-body-failed", path: incoming.pathname, error: String(error) }));
      return problemResponse({ status: 400, title: "Bad Request", detail: "The request body ended early or was malformed." });
    }
    options.onAnswered?.("unreachable");
    console.error(JSON.stringify({ event: "origin-unreachable", path: incoming.pathname, error: String(error) }));
    return originProblem(502, "The origin could not be reached.");
  }
  // An origin that answers before the body is all sent (an early 413) is timed from the start.
  options.onAnswered?.(statusClassOf(upstream.status), (Date.now() - (waitStartedMs || startedMs)) / 1000);

  if (upstream.webSocket) {
    return new Response(null, { status: 101, webSocket: upstream.webSocket, headers: upstream.headers });
  }
  // A fresh Response so the limiter can add its headers: a fetched response's headers are immutable.
  return new Response(upstream.body, upstream);
}
