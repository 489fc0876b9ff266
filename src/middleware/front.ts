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

/** The middleware's repeated denials, as `front()` asks them; `Screening` is what it found out about a request it passes on. */
export interface RepeatedDenials<Screening> {
  /** Whether none is remembered: then no request is looked at, so admitted traffic pays nothing. */
  readonly isEmpty: boolean;
  /**
   * The middleware's answer to a request with this routed path if it is a cached denial. Otherwise what screening the
   * request found out, which the request carries to the middleware (`takeScreening`), or undefined when it found nothing.
   */
  screen(request: Request, path: string, env: unknown, ctx: ExecutionContext | undefined): Response | { screened: Screening } | undefined;
}

const HANDED_ON = Symbol("edge-rate-limiter: screened by front()");

/** A request `front()` passed on to the app, carrying what it found out and whose screening that was. */
type HandedOnRequest<Screening> = Request & {
  [HANDED_ON]?: { by: RepeatedDenials<Screening>; screened: Screening } | undefined;
};

/**
 * What `front()` found out about `request` before it passed it on, if `by` (the middleware's repeated denials) screened
 * it: once, so that the middleware takes the request up where screening left it rather than screen it again. Another
 * `rateLimit()` in the same app finds nothing here and screens the request for its own rules.
 */
export function takeScreening<Screening>(request: Request, by: RepeatedDenials<Screening>): Screening | undefined {
  const handedOn = (request as HandedOnRequest<Screening>)[HANDED_ON];
  if (handedOn === undefined || handedOn.by !== by) return undefined;
  (request as HandedOnRequest<Screening>)[HANDED_ON] = undefined;
  return handedOn.screened;
}

/**
 * `app` with the middleware's repeated denials answered in front of it. HEAD requests go to the app, which answers them as a
 * GET without its body; so do the requests `bypass` picks out.
 */
export function frontOf<App extends RoutedApp, Screening>(
  app: App,
  repeatedDenials: RepeatedDenials<Screening>,
  options: FrontOptions = {},
): Front<App> {
  const { bypass } = options;
  const answerFirst = (request: Request, env: unknown, ctx: ExecutionContext | undefined): Response | undefined => {
    if (repeatedDenials.isEmpty || request.method === "HEAD") return undefined;
    const path = app.getPath(request, { env });
    if (bypass?.(request, path, env)) return undefined;
    const found = repeatedDenials.screen(request, path, env, ctx);
    if (found === undefined || found instanceof Response) return found;
    (request as HandedOnRequest<Screening>)[HANDED_ON] = { by: repeatedDenials, screened: found.screened };
    return undefined;
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
