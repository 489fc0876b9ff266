import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

function sendCode(phone: string, address = "192.0.2.1") {
  return exports.default.fetch(`https://example.test/send-code?phone=${encodeURIComponent(phone)}`, {
    method: "POST",
    headers: { "CF-Connecting-IP": address },
  });
}

describe("a plain fetch Worker with createLimiter() from the package", () => {
  it("sends 3 codes an hour to one phone number, then answers 429 with how long to wait", async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await sendCode("+15550100")).status);
    expect(statuses).toEqual([200, 200, 200]);
    const denied = await sendCode("+15550100");
    expect(denied.status).toBe(429);
    const body = (await denied.json()) as { retryAfterSeconds: number };
    expect(body.retryAfterSeconds).toBeGreaterThan(0);
    expect(denied.headers.get("Retry-After")).toBe(String(body.retryAfterSeconds));
    expect(denied.headers.get("RateLimit-Policy")).toBe('"per-phone";q=3;w=3600');
  });

  it("counts every phone number on its own, and tells the remaining", async () => {
    const response = await sendCode("+15550199");
    expect(await response.json()).toEqual({ sent: true, remaining: 2 });
  });

  it("limits an address that asks for many numbers", async () => {
    const statuses = [];
    for (let i = 0; i < 21; i++) statuses.push((await sendCode(`+1555020${String(i).padStart(2, "0")}`, "198.51.100.7")).status);
    expect(statuses.slice(0, 20).every((status) => status === 200)).toBe(true);
    expect(statuses[20]).toBe(429);
  });
});
