import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type RecordedAdmission, worstOverAdmission } from "../../bench/history.ts";
import { type DevServer, startDevServer } from "./dev-server.ts";
import { type OriginServer, startOrigin } from "./origin-server.ts";

// Slow enough to refill that a restart which forgot the client would show: 10 at once, then one a minute.
const LIMITS = { limit: 10, periodSeconds: 600, burst: 10 };
const POLICY = JSON.stringify({ rules: [{ name: "crash", limit: LIMITS.limit, period: "10m", burst: LIMITS.burst }] });
const KEY = "crash-client";

const persistTo = mkdtempSync(join(tmpdir(), "limiter-crash-"));
let origin: OriginServer | undefined;
let limiter: DevServer | undefined;

afterAll(async () => {
  await limiter?.stop();
  await origin?.close();
  rmSync(persistTo, { recursive: true, force: true });
});

/** Sends requests for one client from `connections` loops until `untilMs`, recording each admission's send and reply times. */
async function load(url: string, untilMs: number, connections: number, admitted: RecordedAdmission[]): Promise<number[]> {
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < untilMs) {
        const sentAtMs = Date.now();
        try {
          const response = await fetch(`${url}/crash`, { headers: { "x-api-key": KEY }, signal: AbortSignal.timeout(10_000) });
          await response.arrayBuffer();
          const repliedAtMs = Date.now();
          statuses.push(response.status);
          // Admitted somewhere between its send and its reply: the check counts it only in intervals holding both.
          if (response.status === 200) admitted.push({ fromMs: sentAtMs, atMs: repliedAtMs });
        } catch {
          // Cut off by the crash: it may or may not have been admitted, so it is not counted either way (the
          // check then looks at fewer admissions than happened, which can only hide a violation, never invent one).
          statuses.push(0);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }),
  );
  return statuses;
}

describe("a crash of npm start in the middle of a client's flood", () => {
  it("keeps every admission within burst + rate × t, across SIGKILL and a restart on the same storage", async () => {
    origin = await startOrigin();
    const vars = { ORIGIN_URL: origin.url, RATE_LIMIT_POLICY: POLICY };
    const admitted: RecordedAdmission[] = [];

    limiter = await startDevServer({ vars, persistTo, npmStart: true });
    const before = await load(limiter.url, Date.now() + 4_000, 4, admitted);
    // Killed mid-flood: requests are in flight, nothing gets to shut down or flush.
    const crashing = load(limiter.url, Date.now() + 500, 2, admitted);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await limiter.kill();
    await crashing;

    limiter = await startDevServer({ vars, persistTo, npmStart: true });
    const after = await load(limiter.url, Date.now() + 4_000, 4, admitted);

    expect(before.filter((status) => status === 200)).toHaveLength(LIMITS.burst);
    expect(after.filter((status) => status === 429).length).toBeGreaterThan(0);
    expect(worstOverAdmission(admitted, LIMITS)).toBeLessThanOrEqual(0);
    // The check can fail: a restart that had forgotten the client would have admitted a second burst.
    const forgotten = [...admitted, ...Array.from({ length: LIMITS.burst }, () => ({ ...(admitted.at(-1) as RecordedAdmission) }))];
    expect(worstOverAdmission(forgotten, LIMITS)).toBeGreaterThan(0);
  }, 180_000);
});
