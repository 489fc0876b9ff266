import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { type IncomingHttpHeaders, request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type DevServer, freePort, startDevServer } from "./dev-server.ts";
import { type OriginServer, patternChunks, startOrigin } from "./origin-server.ts";

const POLICY = JSON.stringify({ rules: [{ name: "default", limit: 5, period: "1m" }] });
const MB = 1024 * 1024;
const ADMIN_TOKEN = "e2e-admin-token-7c4f1e9a2b6d3058aa";

let origin: OriginServer;
let limiter: DevServer;
let persistTo: string;
let keyCounter = 0;

/** A client of its own, so that each test starts with a full budget. */
function newClient(): Record<string, string> {
  keyCounter += 1;
  return { "x-api-key": `e2e-client-${keyCounter}-${Date.now()}` };
}

function send(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${limiter.url}${path}`, { redirect: "manual", signal: AbortSignal.timeout(60_000), ...init });
}

/** A new client's streamed POST of `body` to the origin's /upload, which answers with its length and SHA-256. */
function upload(body: ReadableStream<Uint8Array>) {
  const headers = { ...newClient(), "Content-Type": "application/octet-stream" };
  return send("/upload", { method: "POST", headers, body, duplex: "half" } as RequestInit);
}

async function digestOf(body: ReadableStream<Uint8Array> | null): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  if (body) {
    for await (const chunk of body) {
      bytes += chunk.length;
      hash.update(chunk);
    }
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** One request through node:http, which sends headers exactly as given. */
function rawRequest(
  url: string,
  options: { method: string; headers: Record<string, string>; body: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers, timeout: 30_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.end(options.body);
  });
}

beforeAll(async () => {
  origin = await startOrigin();
  persistTo = mkdtempSync(join(tmpdir(), "limiter-e2e-"));
  limiter = await startDevServer({
    persistTo,
    vars: { ORIGIN_URL: origin.url, ORIGIN_TIMEOUT_SECONDS: "2", RATE_LIMIT_POLICY: POLICY, ADMIN_TOKEN },
  });
});

afterAll(async () => {
  await limiter?.stop();
  await origin?.close();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

describe("through wrangler dev, in front of a real origin", () => {
  it("admits 5 requests per client, then answers 429 with the limit headers; other clients are independent", async () => {
    const alice = newClient();
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await send("/api/items", { headers: alice })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);

    const denied = await send("/api/items", { headers: alice });
    expect(denied.headers.get("content-type")).toBe("application/problem+json");
    expect(Number(denied.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(denied.headers.get("ratelimit-policy")).toBe('"default";q=5;w=60');
    expect(denied.headers.get("ratelimit")).toMatch(/^"default";r=0;t=\d+$/);
    expect(((await denied.json()) as { "violated-policies": string[] })["violated-policies"]).toEqual(["default"]);

    const bob = await send("/api/items", { headers: newClient() });
    expect(bob.status).toBe(200);
    expect(bob.headers.get("ratelimit")).toMatch(/^"default";r=4;t=\d+$/);
  });

  it("never lets a denied request reach the origin", async () => {
    const client = newClient();
    const path = `/counted/${client["x-api-key"]}`;
    for (let i = 0; i < 8; i++) await (await send(path, { headers: client })).arrayBuffer();
    expect(origin.log.filter((entry) => entry.path === path)).toHaveLength(5);
  });

  it("forwards method, path, query, headers and body, minus hop-by-hop headers", async () => {
    // node:http, because fetch refuses to send hop-by-hop headers at all. (Headers named in
    // Connection are covered in test/proxy.test.ts: the dev server drops Connection itself.)
    const { status, headers, body } = await rawRequest(`${limiter.url}/api/echo?b=2&a=1&a=3`, {
      method: "PATCH",
      headers: {
        ...newClient(),
        "X-Custom": "value",
        "Content-Type": "text/plain",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
      },
      body: "hello origin",
    });
    expect(status).toBe(200);
    expect(headers["x-origin-header"]).toBe("kept");
    const seen = JSON.parse(body) as { method: string; path: string; headers: Record<string, string> };
    expect(seen.method).toBe("PATCH");
    expect(seen.path).toBe("/api/echo?b=2&a=1&a=3");
    expect(seen.headers["x-custom"]).toBe("value");
    expect(seen.headers["keep-alive"]).toBeUndefined();
    expect(seen.headers["proxy-authorization"]).toBeUndefined();
    expect(seen.headers["x-forwarded-proto"]).toBe("http");
    expect(seen.headers["x-forwarded-host"]).toBe(new URL(limiter.url).host);
    const echoed = origin.log.find((entry) => entry.path === "/api/echo?b=2&a=1&a=3");
    expect(echoed?.method).toBe("PATCH");
  });

  it("forwards a UTF-8 header's bytes unchanged, and hashes a key's bytes as the client sent them", async () => {
    // node:http writes a header string's characters as bytes (Latin-1), so this string is the UTF-8 of "clé-ü-<n>".
    const key = `clé-ü-${Date.now()}`;
    const bytes = Buffer.from(key, "utf8");
    const response = await rawRequest(`${limiter.url}/utf8-key`, {
      method: "GET",
      headers: { "x-api-key": bytes.toString("latin1") },
      body: "",
    });
    expect(response.status).toBe(200);
    const seen = origin.log.find((entry) => entry.path === "/utf8-key");
    // node:http reads header bytes as Latin-1 too, so this is exactly the bytes the origin received.
    expect(Buffer.from(String(seen?.headers["x-api-key"]), "latin1").toString("hex")).toBe(bytes.toString("hex"));

    const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };
    const byBytes = `key:${createHash("sha256").update(bytes).digest("hex")}`;
    const inspected = await send(`/_ratelimit/clients/id:${byBytes}`, { headers: auth });
    expect(await inspected.json()).toMatchObject({ client: byBytes, rules: [{ name: "default", remaining: 4 }] });
    const lookup = await send("/_ratelimit/clients/lookup", { method: "POST", headers: auth, body: JSON.stringify({ key }) });
    expect(await lookup.json()).toMatchObject({ client: byBytes, rules: [{ name: "default", remaining: 4 }] });
  });

  it("refuses keys that are not UTF-8 rather than let workerd's U+FFFD make them one client", async () => {
    const statuses = [];
    for (const byte of [0xe9, 0xea]) {
      const key = Buffer.concat([Buffer.from(`latin1-${Date.now()}-`), Buffer.from([byte])]).toString("latin1");
      const response = await rawRequest(`${limiter.url}/latin1-key`, { method: "GET", headers: { "x-api-key": key }, body: "" });
      statuses.push(response.status);
      expect(JSON.parse(response.body)).toMatchObject({ detail: expect.stringContaining("x-api-key header is not valid UTF-8") });
    }
    expect(statuses).toEqual([400, 400]);
    expect(origin.log.filter((entry) => entry.path === "/latin1-key")).toHaveLength(0);
  });

  it("delivers a request body to the origin byte for byte", async () => {
    const response = await send("/upload", { method: "PUT", headers: newClient(), body: "hello origin" });
    expect(await response.json()).toEqual({ bytes: 12, sha256: createHash("sha256").update("hello origin").digest("hex") });
  });

  it.each([404, 500, 503])("passes the origin's %i with its headers and body", async (status) => {
    const response = await send(`/status/${status}`, { headers: newClient() });
    expect(response.status).toBe(status);
    expect(response.headers.get("x-origin-header")).toBe("kept");
    expect(response.headers.get("ratelimit-policy")).toBe('"default";q=5;w=60');
    expect(await response.text()).toBe(`origin says ${status}`);
  });

  it("passes redirects to the client instead of following them", async () => {
    const response = await send("/redirect", { headers: newClient() });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/elsewhere");
    expect(origin.log.some((entry) => entry.path === "/elsewhere")).toBe(false);
  });

  it("answers 504 problem+json when the origin stalls beyond the timeout", async () => {
    const started = Date.now();
    const response = await send("/stall", { headers: newClient() });
    expect(response.status).toBe(504);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const body = (await response.json()) as { detail: string };
    expect(body.detail).toBe("The origin did not answer within 2 s.");
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("times the wait from the end of the request body: a 20-byte upload sent over 6 s is answered, under a 2 s timeout", async () => {
    const bytes = new TextEncoder().encode("twenty bytes, slowly");
    let sentBytes = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sentBytes === bytes.length) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 300));
        controller.enqueue(bytes.slice(sentBytes, sentBytes + 1));
        sentBytes++;
      },
    });
    const response = await upload(body);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { bytes: number }).bytes).toBe(bytes.length);
  });

  it.each(["GET", "HEAD", "DELETE"])(
    "sends a bodiless %s once more when the origin closed the connection before any response byte",
    async (method) => {
      const path = `/drop-once/${method}-${Date.now()}`;
      const response = await send(path, { method, headers: newClient() });
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      expect(origin.log.filter((entry) => entry.path === path)).toHaveLength(2);
      expect(limiter.output()).toContain(`"event":"origin-retried","path":"${path}"`);
    },
  );

  it("sends nothing twice that has a body or is not idempotent, and retries only once", async () => {
    const post = `/drop-once/post-${Date.now()}`;
    const posted = await send(post, { method: "POST", headers: newClient(), body: "once only" });
    expect(posted.status).toBe(502);
    const bodiless = `/drop-once/bodiless-post-${Date.now()}`;
    expect((await send(bodiless, { method: "POST", headers: newClient() })).status).toBe(502);
    const put = `/drop-once/put-${Date.now()}`;
    expect((await send(put, { method: "PUT", headers: newClient(), body: "a body" })).status).toBe(502);
    const always = `/drop/get-${Date.now()}`;
    expect((await send(always, { headers: newClient() })).status).toBe(502);
    for (const [path, attempts] of [
      [post, 1],
      [bodiless, 1],
      [put, 1],
      [always, 2],
    ] as const) {
      expect(
        origin.log.filter((entry) => entry.path === path),
        path,
      ).toHaveLength(attempts);
    }
  });

  it("tells a client's broken body from an unreachable origin: a body cut short is logged as the client's", async () => {
    const path = `/upload/cut-short-${Date.now()}`;
    const socket = connect(Number(new URL(limiter.url).port), "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    const { "x-api-key": key } = newClient();
    socket.write(`POST ${path} HTTP/1.1\r\nHost: limiter\r\nx-api-key: ${key}\r\nContent-Length: 100\r\n\r\n0123456789`);
    // The body stops 90 bytes short of what it declared, and the client closes its side.
    await vi.waitFor(() => expect(origin.log.some((entry) => entry.path === path)).toBe(true), { timeout: 10_000 });
    socket.end();
    socket.resume();
    await vi.waitFor(() => expect(limiter.output()).toContain(`"event":"client-body-failed","path":"${path}"`), { timeout: 10_000 });
    expect(limiter.output()).not.toContain(`"event":"origin-unreachable","path":"${path}"`);
    socket.destroy();
  });

  it("appends the client address to X-Forwarded-For, and a spoofed one does not change the client's identity", async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const response = await send(`/xff/${i}`, { headers: { "X-Forwarded-For": `198.51.100.${i}` } });
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const first = origin.log.find((entry) => entry.path === "/xff/0");
    expect(first?.headers["x-forwarded-for"]).toMatch(/^198\.51\.100\.0, (127\.0\.0\.1|::1)$/);
  });

  it.each([1, 100])("streams a %i MB download intact", async (megabytes) => {
    const path = `/download/${megabytes * MB}`;
    const response = await send(path, { headers: newClient() });
    expect(response.status).toBe(200);
    const received = await digestOf(response.body);
    expect(received.bytes).toBe(megabytes * MB);
    expect(received.sha256).toBe(origin.sentDigests.get(path));
  });

  it.each([1, 100])("streams a %i MB upload intact", async (megabytes) => {
    const sent = createHash("sha256");
    const chunks = patternChunks(megabytes * MB, `upload-${megabytes}`);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.next();
        if (next.done) return controller.close();
        sent.update(next.value);
        controller.enqueue(next.value);
      },
    });
    const response = await upload(body);
    expect(response.status).toBe(200);
    const received = (await response.json()) as { bytes: number; sha256: string };
    expect(received.bytes).toBe(megabytes * MB);
    expect(received.sha256).toBe(sent.digest("hex"));
  });
});

describe("an unreachable origin, and a restart", () => {
  it("answers 502 when the origin is down, and keeps a spent budget across a restart with the same --persist-to", async () => {
    const deadPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "limiter-restart-"));
    const vars = { ORIGIN_URL: `http://127.0.0.1:${deadPort}`, RATE_LIMIT_POLICY: POLICY };
    const client = { "x-api-key": "restart-client" };
    try {
      const first = await startDevServer({ persistTo: dir, vars });
      const statuses: number[] = [];
      let problem: unknown;
      try {
        for (let i = 0; i < 6; i++) {
          const response = await fetch(`${first.url}/api`, { headers: client });
          statuses.push(response.status);
          problem = await response.json();
        }
      } finally {
        await first.stop();
      }
      // Admitted requests are charged even when the origin is down: 502, not a free retry.
      expect(statuses).toEqual([502, 502, 502, 502, 502, 429]);

      const second = await startDevServer({ persistTo: dir, vars });
      try {
        const afterRestart = await fetch(`${second.url}/api`, { headers: client });
        expect(afterRestart.status).toBe(429);
        const fresh = await fetch(`${second.url}/api`, { headers: { "x-api-key": "another-client" } });
        expect(fresh.status).toBe(502);
        expect(fresh.headers.get("content-type")).toBe("application/problem+json");
        expect(await fresh.json()).toMatchObject({ status: 502, detail: "The origin could not be reached." });
      } finally {
        await second.stop();
      }
      expect(problem).toMatchObject({ status: 429 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
