import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import app from "../src/index";

/** One login attempt from `address`, its settlement waited for (it runs in the request's waitUntil). */
async function login(email: string, password: string, address: string) {
  const ctx = createExecutionContext();
  const body = new URLSearchParams({ email, password });
  const response = await app.request("/login", { method: "POST", body, headers: { "CF-Connecting-IP": address } }, env, ctx);
  await response.text();
  await waitOnExecutionContext(ctx);
  return response;
}

describe("login throttling from the package", () => {
  it("blocks an email and address pair after 5 failures, and lets the real user in from elsewhere", async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await login("Ada@Example.com", `guess ${i}`, "203.0.113.9")).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    const blocked = await login("ada@example.com", "correct horse battery staple", "203.0.113.9");
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("Retry-After")).toBe("900");
    expect((await login("ada@example.com", "correct horse battery staple", "198.51.100.20")).status).toBe(200);
  });

  it("forgives a user's typos once they get the password right", async () => {
    for (let round = 0; round < 3; round++) {
      for (let typo = 0; typo < 4; typo++) expect((await login("ada@example.com", "correct horse", "198.51.100.30")).status).toBe(401);
      expect((await login("ada@example.com", "correct horse battery staple", "198.51.100.30")).status).toBe(200);
    }
  });
});
