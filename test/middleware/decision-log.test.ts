import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/worker/app.ts";
import { useClockFor } from "../client.ts";
import { ManualClock } from "../manual-clock.ts";

const app = createApp();
const RAW_KEY = "sk_live_log_secret_7f3a";
const ADMIN_TOKEN = "admin-token-never-logged-7f3a9c2e5b1d4f60";

afterEach(() => vi.restoreAllMocks());

/** Every line the Worker logs while `run` runs. */
async function logsOf(run: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const capture = (...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  };
  vi.spyOn(console, "log").mockImplementation(capture);
  vi.spyOn(console, "error").mockImplementation(capture);
  vi.spyOn(console, "warn").mockImplementation(capture);
  await run();
  return lines;
}

describe("structured logs", () => {
  it("writes one JSON line per decision with logDecisions: all, naming the client by its hashed id", async () => {
    const headers = { "x-api-key": RAW_KEY };
    const clientId = await useClockFor(headers, new ManualClock());
    const policy = JSON.stringify({
      rules: [
        { name: "api", limit: 1, period: "1m" },
        { name: "trial", limit: 1, period: "1h", mode: "shadow" },
      ],
      logDecisions: "all",
    });
    const lines = await logsOf(async () => {
      for (let i = 0; i < 2; i++) await app.request("https://limiter.test/x", { headers }, { ...env, RATE_LIMIT_POLICY: policy });
    });
    const decisions = lines.map((line) => JSON.parse(line) as { event: string }).filter((entry) => entry.event === "decision");
    expect(decisions).toEqual([
      {
        event: "decision",
        clientId,
        allowed: true,
        degraded: false,
        rules: [
          { name: "api", allowed: true, remaining: 0 },
          { name: "trial", allowed: true, remaining: 0 },
        ],
      },
      {
        event: "decision",
        clientId,
        allowed: false,
        degraded: false,
        rules: [
          { name: "api", allowed: false, remaining: 0 },
          { name: "trial", allowed: false, remaining: 0 },
        ],
        shadowDenied: ["trial"],
      },
    ]);
  });

  it.each([
    ["denied", ["admitted by a shadow rule's denial", "denied"]],
    ["none", []],
  ])("with logDecisions: %s, logs only the decisions worth acting on", async (logDecisions, expected) => {
    const headers = { "x-api-key": `log-${logDecisions}` };
    await useClockFor(headers, new ManualClock());
    const policy = JSON.stringify({
      rules: [
        { name: "pair", limit: 2, period: "1m" },
        { name: "trial", limit: 1, period: "1h", mode: "shadow" },
      ],
      logDecisions,
    });
    const lines = await logsOf(async () => {
      for (let i = 0; i < 3; i++) await app.request("https://limiter.test/x", { headers }, { ...env, RATE_LIMIT_POLICY: policy });
    });
    const decisions = lines
      .map((line) => JSON.parse(line) as { event: string; allowed: boolean; shadowDenied?: string[] })
      .filter((entry) => entry.event === "decision")
      .map((entry) => (entry.allowed ? "admitted by a shadow rule's denial" : "denied"));
    // The first request (admitted, every rule satisfied) is not logged; the second passes although "trial" denies.
    expect(decisions).toEqual(expected);
  });

  it("never logs a raw API key, bearer token or the admin token, whatever happens", async () => {
    const policy = JSON.stringify({ rules: [{ name: "roomy", limit: 100, period: "1m" }], logDecisions: "all" });
    const withAdmin = { ...env, ADMIN_TOKEN, ORIGIN_URL: "not a url", RATE_LIMIT_POLICY: policy };
    await useClockFor({ "x-api-key": RAW_KEY }, new ManualClock());
    const lines = await logsOf(async () => {
      await app.request("https://limiter.test/a", { headers: { "x-api-key": RAW_KEY } }, withAdmin);
      await app.request("https://limiter.test/a", { headers: { Authorization: `Bearer ${RAW_KEY}` } }, withAdmin);
      await app.request(
        "https://limiter.test/a",
        { headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "CF-Connecting-IP": "192.0.2.44" } },
        withAdmin,
      );
      await app.request(
        "https://limiter.test/_ratelimit/clients/lookup",
        { method: "POST", headers: { Authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ key: RAW_KEY }) },
        withAdmin,
      );
      await app.request(
        "https://limiter.test/_ratelimit/clients/ip:192.0.2.1",
        { headers: { Authorization: `Bearer ${RAW_KEY}` } },
        withAdmin,
      );
      await app.request("https://limiter.test/a", { headers: { "x-api-key": RAW_KEY } }, { ...withAdmin, RATE_LIMIT_POLICY: "{broken" });
    });
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) {
      expect(line).not.toContain(RAW_KEY);
      expect(line).not.toContain(ADMIN_TOKEN);
    }
  });
});
