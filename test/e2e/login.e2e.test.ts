import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer, withPackageFromSource } from "./dev-server.ts";

let server: DevServer;
let persistTo: string;

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), "limiter-login-"));
  // examples/login as its README runs it (`npm run dev`), with the package built from this checkout's source.
  server = await startDevServer({ persistTo, vars: {}, configs: [withPackageFromSource("examples/login/wrangler.jsonc", persistTo)] });
});

afterAll(async () => {
  await server?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const PASSWORD = "correct horse battery staple";

/** One login attempt, as a browser's form sends it; wrangler dev keeps the CF-Connecting-IP a test sends. */
async function login(email: string, password: string, address: string): Promise<{ status: number; retryAfter: string | null }> {
  const response = await fetch(`${server.url}/login`, {
    method: "POST",
    body: new URLSearchParams({ email, password }),
    headers: { "CF-Connecting-IP": address },
  });
  await response.text();
  return { status: response.status, retryAfter: response.headers.get("Retry-After") };
}

describe("login throttling through wrangler dev: an attacker and a real user", () => {
  it("blocks an attacker guessing one account after 5 failures, while the account's owner signs in from home", async () => {
    const attacker = "203.0.113.66";
    const guesses = [];
    for (let i = 0; i < 5; i++) guesses.push((await login(i % 2 ? "ADA@example.com" : "ada@example.com", `guess-${i}`, attacker)).status);
    expect(guesses).toEqual([401, 401, 401, 401, 401]);
    // Even the right password is refused now, for the block's 15 minutes: the attacker learns nothing by it.
    expect(await login("ada@example.com", PASSWORD, attacker)).toEqual({ status: 429, retryAfter: "900" });
    expect((await login("ada@example.com", PASSWORD, "198.51.100.7")).status).toBe(200);
  });

  it("lets at most 5 of 12 concurrent guesses at one account through, each held until its answer", async () => {
    const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => login("ada@example.com", `burst-${i}`, "203.0.113.77")));
    const counted = statuses.map(({ status }) => status).sort();
    expect(counted.filter((status) => status === 401)).toHaveLength(5);
    expect(counted.filter((status) => status === 429)).toHaveLength(7);
  });

  it("stops an address spraying one password over many accounts at its 100 failures a day", async () => {
    const sprayer = "203.0.113.88";
    const statuses = [];
    for (let i = 0; i < 100; i++) statuses.push((await login(`user${i}@example.com`, "Summer2026!", sprayer)).status);
    expect(statuses.every((status) => status === 401)).toBe(true);
    expect((await login("user100@example.com", "Summer2026!", sprayer)).status).toBe(429);
    // The account owner at another address is not affected.
    expect((await login("ada@example.com", PASSWORD, "198.51.100.8")).status).toBe(200);
  });

  it("forgives a real user's typos once the password is right, so they are never locked out by them", async () => {
    const home = "198.51.100.9";
    for (let round = 0; round < 3; round++) {
      for (let typo = 0; typo < 4; typo++) expect((await login("ada@example.com", "correct horse", home)).status).toBe(401);
      expect((await login("Ada@Example.com", PASSWORD, home)).status).toBe(200);
    }
  });
});
