/** The handler `rateLimit().front()` puts in front of a Hono app, answering repeated denials before it routes a request. */

/** Options of `front()`. */
export interface FrontOptions {
  /** Requests `app` does not rate-limit (say, an admin route before the middleware), by request and routed path. */
  bypass?: (request: Request, path: string, env: unknown) => boolean;
}

/** What `front()` needs of an app: a Hono app's `fetch`, and its `getPath`, so that rules match the path the middleware sees. */
export interface RoutedApp {
  fetch(request: Request, env?: unknown, ctx?: ExecutionContext): Response | Promise<Response>;
  getPath(request: Request, options?: { env?: unknown }): string;
}

/** A Worker's handler with the limiter in front of an app: `fetch`, and `request` for tests, as a Hono app has them. */
export interface Front<App extends RoutedApp> {
  fetch: App["fetch"];
  request(
    input: string | Request,
    init?: RequestInit,
    env?: Parameters<App["fetch"]>[1],
    ctx?: ExecutionContext,
  ): Response | Promise<Response>;
}

/** The middleware's repeated denials, as `front()` asks them. */
export interface RepeatedDenials {
  /** Whether none is remembered: then no request is looked at, so admitted traffic pays nothing. */
  readonly isEmpty: boolean;
  /**
   * The middleware's answer to a request with this routed path if it is a cached denial; otherwise undefined,
   * and the middleware takes the request up where this left it (its screening is remembered for it).
   */
  answer(request: Request, path: string, env: unknown, ctx: ExecutionContext | undefined): Response | undefined;
}

/**
 * `app` with the middleware's repeated denials answered in front of it. HEAD requests go to the app, which answers them as a
 * GET without its body; so do the requests `bypass` picks out.
 */
export function frontOf<App extends RoutedApp>(app: App, repeatedDenials: RepeatedDenials, options: FrontOptions = {}): Front<App> {
  const { bypass } = options;
  const answerFirst = (request: Request, env: unknown, ctx: ExecutionContext | undefined): Response | undefined => {
    if (repeatedDenials.isEmpty || request.method === "HEAD") return undefined;
    const path = app.getPath(request, { env });
    return bypass?.(request, path, env) ? undefined : repeatedDenials.answer(request, path, env, ctx);
  };
  const fetch: App["fetch"] = (request, env, ctx) => answerFirst(request, env, ctx) ?? app.fetch(request, env, ctx);
  return {
    fetch,
    request(input, init, env, ctx) {
      const url = input instanceof Request || /^https?:\/\//.test(input) ? input : new URL(input, "http://localhost");
      return fetch(new Request(url, init), env, ctx);
    },
  };
}
