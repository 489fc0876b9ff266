import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { misconfigurationId } from "../../src/http/problem.ts";
import { createApp } from "../../src/worker/app.ts";
import { forwardedHeaders, targetUrl } from "../../src/worker/proxy.ts";
import { misconfigurationOf, useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

describe("targetUrl", () => {
  it.each([
    ["https://api.example.com", "https://limiter.test/users?id=1", "https://api.example.com/users?id=1"],
    ["https://api.example.com/v1/", "https://limiter.test/users", "https://api.example.com/v1/users"],
    ["https://api.example.com/v1", "https://limiter.test/", "https://api.example.com/v1/"],
    ["http://127.0.0.1:9000/base?token=abc", "https://limiter.test/x?y=2", "http://127.0.0.1:9000/base/x?token=abc&y=2"],
    ["https://api.example.com", "https://limiter.test/a%20b?q=%2F", "https://api.example.com/a%20b?q=%2F"],
  ])("%s + %s → %s", (base, incoming, expected) => {
    expect(targetUrl(new URL(base), new URL(incoming)).href).toBe(expected);
  });
});

describe("forwardedHeaders", () => {
  const request = (headers: Record<string, string>) => new Request("https://limiter.test/path", { headers });

  it("drops hop-by-hop headers and the ones Connection names, keeps the rest", () => {
    const headers = forwardedHeaders(
      request({
        Connection: "close, X-Session-Hop",
        "X-Session-Hop": "1",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic abc",
        TE: "trailers",
        Trailer: "Expires",
        Upgrade: "h2c",
        "X-Api-Key": "client-key",
        Accept: "application/json",
      }),
      undefined,
    );
    expect([...headers.keys()].sort()).toEqual(["accept", "x-api-key", "x-forwarded-host", "x-forwarded-proto"]);
  });

  it("keeps Upgrade for a WebSocket handshake", () => {
    const headers = forwardedHeaders(request({ Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": "k" }), undefined);
    expect(headers.get("upgrade")).toBe("websocket");
    expect(headers.get("connection")).toBe("Upgrade");
  });

  it("appends CF-Connecting-IP to X-Forwarded-For and sets the proto and host", () => {
    const headers = forwardedHeaders(request({ "CF-Connecting-IP": "192.0.2.10", "X-Forwarded-For": "198.51.100.1" }), undefined);
    expect(headers.get("x-forwarded-for")).toBe("198.51.100.1, 192.0.2.10");
    expect(headers.get("x-forwarded-proto")).toBe("https");
    expect(headers.get("x-forwarded-host")).toBe("limiter.test");
  });

  it("leaves out headers the limiter keeps to itself", () => {
    const headers = forwardedHeaders(request({ Authorization: "Bearer admin-secret", Accept: "*/*" }), (name, value) => {
      return name === "authorization" && value === "Bearer admin-secret";
    });
    expect(headers.has("authorization")).toBe(false);
    expect(headers.get("accept")).toBe("*/*");
  });
});

describe("the Worker in front of the demo origin", () => {
  it("forwards an admitted request and adds the RateLimit headers to the origin's response", async () => {
    const headers = { "x-api-key": "proxy-demo-client" };
    await useClockFor(headers, new ManualClock());
    const response = await exports.default.fetch("https://limiter.test/hello?x=1", { headers });
    expect(response.status).toBe(200);
    expect(response.headers.get("X-Demo-Origin")).toBe("yes");
    expect(response.headers.get("RateLimit")).toBe('"default";r=4;t=2');
    expect(await response.json()).toMatchObject({ method: "GET", path: "/hello", query: "?x=1" });
  });

  it.each([
    ["not a url", "ORIGIN_URL: must be an absolute http(s) URL"],
    ["ftp://files.example.com", "ORIGIN_URL: must be an absolute http(s) URL"],
  ])("answers 500 problem+json naming ORIGIN_URL when it is %j", async (originUrl, detail) => {
    const { env } = await import("cloudflare:workers");
    const headers = { "x-api-key": `bad-origin-${originUrl}` };
    await useClockFor(headers, new ManualClock());
    const response = await createApp().request("https://limiter.test/", { headers }, { ...env, ORIGIN_URL: originUrl });
    expect(await misconfigurationOf(response)).toBe(misconfigurationId(detail));
  });

  it("answers 500 naming ORIGIN_TIMEOUT_SECONDS when it is not a positive number", async () => {
    const { env } = await import("cloudflare:workers");
    const headers = { "x-api-key": "bad-timeout" };
    await useClockFor(headers, new ManualClock());
    const response = await createApp().request("https://limiter.test/", { headers }, { ...env, ORIGIN_TIMEOUT_SECONDS: "soon" });
    expect(await misconfigurationOf(response)).toBe(misconfigurationId("ORIGIN_TIMEOUT_SECONDS: must be a number > 0"));
  });
});

describe("WebSocket pass-through", () => {
  it("limits the upgrade request, then passes the socket through to the origin", async () => {
    const headers = { "x-api-key": "websocket-client", Upgrade: "websocket" };
    await useClockFor(headers, new ManualClock());
    const response = await exports.default.fetch("https://limiter.test/socket", { headers });
    expect(response.status).toBe(101);
    expect(response.headers.get("RateLimit")).toBe('"default";r=4;t=2');
    const socket = response.webSocket;
    if (!socket) throw new Error("no WebSocket in the response");
    socket.accept();
    const echoed = new Promise<string>((resolve) => socket.addEventListener("message", (event) => resolve(String(event.data))));
    socket.send("hello");
    expect(await echoed).toBe("echo: hello");
    socket.close();

    for (let i = 0; i < 4; i++) (await exports.default.fetch("https://limiter.test/socket", { headers })).webSocket?.accept();
    const denied = await exports.default.fetch("https://limiter.test/socket", { headers });
    expect(denied.status).toBe(429);
    expect(denied.webSocket).toBeNull();
  });
});
