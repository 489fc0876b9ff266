import type { Context } from "hono";
import { problemResponse } from "../http/problem.ts";

/** Options of the proxy to the origin. */
export interface ProxyOptions {
  /**
   * Absolute base URL of the origin; the incoming path and query are appended to its path.
   * When empty, requests go to the `origin` service binding instead.
   */
  originUrl?: string | undefined;
  /** A service binding to the origin, used when `originUrl` is empty. */
  origin?: Fetcher | undefined;
  /**
   * How long to wait for the origin's response headers before answering 504. The body
   * then streams for as long as it takes.
   * @default 30_000
   */
  timeoutMs?: number;
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

function parseOriginUrl(originUrl: string): URL | undefined {
  try {
    const url = new URL(originUrl);
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
  } catch {
    return undefined;
  }
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
  let send: (target: Request) => Promise<Response>;
  let target: URL;

  if (options.originUrl) {
    const base = parseOriginUrl(options.originUrl);
    if (!base) {
      console.error(JSON.stringify({ event: "config-invalid", field: "ORIGIN_URL", problem: "not an absolute http(s) URL" }));
      return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail: "ORIGIN_URL: must be an absolute http(s) URL" });
    }
    target = targetUrl(base, incoming);
    send = (forwarded) => fetch(forwarded);
  } else if (options.origin) {
    const origin = options.origin;
    target = incoming;
    send = (forwarded) => origin.fetch(forwarded);
  } else {
    console.error(JSON.stringify({ event: "config-invalid", field: "ORIGIN_URL", problem: "no origin configured" }));
    return problemResponse({
      status: 500,
      title: "Rate limiter misconfigured",
      detail: "ORIGIN_URL: not set, and no ORIGIN service binding: the limiter has nowhere to send admitted requests",
    });
  }

  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const abort = new AbortController();
  const forwarded = new Request(target, {
    method: request.method,
    headers: forwardedHeaders(request, options.isInternalHeader),
    body: hasBody ? request.body : null,
    redirect: "manual",
    signal: abort.signal,
  });

  // The timeout covers waiting for the response headers only: a large body may take longer.
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new OriginTimeout());
    }, timeoutMs);
  });
  let upstream: Response;
  try {
    upstream = await Promise.race([send(forwarded), timeout]);
  } catch (error) {
    if (error instanceof OriginTimeout) {
      console.error(JSON.stringify({ event: "origin-timeout", timeoutMs, path: incoming.pathname }));
      return originProblem(504, `The origin did not answer within ${timeoutMs / 1000} s.`);
    }
    console.error(JSON.stringify({ event: "origin-unreachable", path: incoming.pathname, error: String(error) }));
    return originProblem(502, "The origin could not be reached.");
  } finally {
    clearTimeout(timer);
  }

  if (upstream.webSocket) {
    return new Response(null, { status: 101, webSocket: upstream.webSocket, headers: upstream.headers });
  }
  // A fresh Response so the limiter can add its headers: a fetched response's headers are immutable.
  return new Response(upstream.body, upstream);
}
