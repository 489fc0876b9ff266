// The demo origin that `npm start` runs behind the limiter: a stand-in for your API,
// so limiting can be seen with no external service. Plain JavaScript so that the test
// pool can load it as it is, with no build step.

export default {
  /** Describes the request it received, as an API would answer it. @param {Request} request */
  async fetch(request) {
    const url = new URL(request.url);
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") return echoSocket();
    // /status/401 answers 401, and so on: for trying rules that count only failed (or successful) requests.
    const status = /^\/status\/([1-5]\d\d)$/.exec(url.pathname)?.[1];
    return Response.json(
      {
        message: "Hello from the demo origin behind edge-rate-limiter",
        method: request.method,
        path: url.pathname,
        query: url.search,
        forwardedFor: request.headers.get("x-forwarded-for"),
        // Shows that credentials meant for the limiter (the admin token) never reach the origin.
        receivedAuthorization: request.headers.has("authorization"),
        receivedApiKey: request.headers.has("x-api-key"),
        // Shows that a body the limiter read a dimension from reaches the origin whole.
        receivedBody: request.body ? await request.text() : null,
      },
      { status: status && Number(status) >= 200 ? Number(status) : 200, headers: { "X-Demo-Origin": "yes" } },
    );
  },
};

/** A WebSocket that echoes every message back, for trying the limiter's WebSocket pass-through. */
function echoSocket() {
  const [client, server] = Object.values(new WebSocketPair());
  server.accept();
  server.addEventListener("message", (event) => server.send(`echo: ${event.data}`));
  return new Response(null, { status: 101, webSocket: client });
}
