import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

async function statuses(path: string, headers: HeadersInit, count: number): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < count; i++) result.push((await exports.default.fetch(`https://example.test${path}`, { headers })).status);
  return result;
}

describe("a Hono Worker with edge-rate-limiter from its package", () => {
  it("answers 429 problem+json on a limited route once the client's budget is spent", async () => {
    const headers = { "x-api-key": "example-client" };
    expect(await statuses("/api/hello", headers, 3)).toEqual([200, 200, 200]);
    const denied = await exports.default.fetch("https://example.test/api/hello", { headers });
    expect(denied.status).toBe(429);
    expect(denied.headers.get("Content-Type")).toBe("application/problem+json");
    expect(denied.headers.get("RateLimit-Policy")).toBe('"api";q=3;w=60');
    expect(Number(denied.headers.get("Retry-After"))).toBeGreaterThan(0);
  });

  it("gives the handler the decision, typed through Hono's context", async () => {
    const response = await exports.default.fetch("https://example.test/api/hello", { headers: { "x-api-key": "another-client" } });
    expect(await response.json()).toEqual({ hello: "world", remaining: 2 });
  });

  it("never limits a route without the middleware", async () => {
    const headers = { "x-api-key": "example-client" };
    expect(await statuses("/", headers, 10)).toEqual(Array(10).fill(200));
  });

  it("limits a signed-in user by their id, however often their token changes", async () => {
    const results = [];
    for (let i = 0; i < 6; i++) {
      const headers = { "x-user": "user-42", Authorization: `Bearer ${crypto.randomUUID()}` };
      results.push((await exports.default.fetch("https://example.test/me/profile", { headers })).status);
    }
    expect(results).toEqual([200, 200, 200, 200, 200, 429]);
    const other = await exports.default.fetch("https://example.test/me/profile", { headers: { "x-user": "user-7" } });
    expect(await other.json()).toEqual({ user: "user-7", remaining: 4 });
  });
});
