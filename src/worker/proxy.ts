import type { Context } from "hono";
import { problemResponse } from "../http/problem.ts";
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

function originProblem(status: 502 | 504, detail: string): Response {
  return problemResponse({ status, title: status === 502 ? "Bad Gateway" : "Gateway Timeout", detail });
}

class OriginTimeout extends Error {}

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
  const { origin } = options;
  const target = "url" in origin ? targetUrl(origin.url, incoming) : incoming;
  const send = (forwarded: Request) => ("url" in origin ? fetch(forwarded) : origin.binding.fetch(forwarded));

  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  // The body goes through a pipe whose end says when the client has sent all of it: the origin answers after that.
  // Of the length the client declared, if any, so that the origin still gets a Content-Length rather than chunks.
  const declaredLength = Number(request.headers.get("content-length") ?? Number.NaN);
  const pipe = !hasBody
    ? undefined
    : Number.isSafeInteger(declaredLength) && declaredLength >= 0
      ? new FixedLengthStream(declaredLength)
      : new IdentityTransformStream();
  const bodySent = pipe && request.body ? request.body.pipeTo(pipe.writable).catch(() => undefined) : Promise.resolve();
  const abort = new AbortController();
  const forwarded = new Request(target, {
    method: request.method,
    headers: forwardedHeaders(request, options.isInternalHeader),
    body: pipe ? pipe.readable : null,
    redirect: "manual",
    signal: abort.signal,
  });

  // The timeout is the wait for the response headers once the request body has been sent: neither a slow upload
  // nor a large download counts against it.
  const { timeoutMs } = options;
  let upstream: Response;
  try {
    const answered = send(forwarded);
    // Until the body is sent only the origin's answer (an early 413, or a failure) ends the wait; then timeoutMs does.
    const afterBody = bodySent.then(() =>
      withTimeout(answered, timeoutMs, () => {
        abort.abort();
        return new OriginTimeout();
      }),
    );
    upstream = await Promise.race([answered, afterBody]);
  } catch (error) {
    if (error instanceof OriginTimeout) {
      console.error(JSON.stringify({ event: "origin-timeout", timeoutMs, path: incoming.pathname }));
      return originProblem(504, `The origin did not answer within ${timeoutMs / 1000} s.`);
    }
    console.error(JSON.stringify({ event: "origin-unreachable", path: incoming.pathname, error: String(error) }));
    return originProblem(502, "The origin could not be reached.");
  }

  if (upstream.webSocket) {
    return new Response(null, { status: 101, webSocket: upstream.webSocket, headers: upstream.headers });
  }
  // A fresh Response so the limiter can add its headers: a fetched response's headers are immutable.
  return new Response(upstream.body, upstream);
}
