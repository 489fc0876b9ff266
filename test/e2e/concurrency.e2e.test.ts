import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./dev-server.ts";
import { type OriginServer, startOrigin } from "./origin-server.ts";

// A 5 ms group-commit window makes the calls that queued requests wait on take a while: long enough for
// workerd to cancel a request that waited only on another request's promise.
const POLICY = JSON.stringify({
  rules: [
    { name: "roomy", limit: 100_000, period: "1m" },
    { name: "tight", limit: 40, period: "1h", match: { path: "/tight/*" } },
  ],
  groupCommitMs: 5,
});

let origin: OriginServer;
let limiter: DevServer;
let persistTo: string;

beforeAll(async () => {
  origin = await startOrigin();
  persistTo = mkdtempSync(join(tmpdir(), "limiter-concurrency-"));
  limiter = await startDevServer({ persistTo, vars: { ORIGIN_URL: origin.url, RATE_LIMIT_POLICY: POLICY } });
});

afterAll(async () => {
  await limiter?.stop();
  await origin?.close();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

/** `rounds` rounds of `concurrency` requests at once for one client; the statuses of all of them. */
async function flood(path: string, key: string, rounds: number, concurrency: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const responses = await Promise.all(
      Array.from({ length: concurrency }, () =>
        fetch(`${limiter.url}${path}`, { headers: { "x-api-key": key }, signal: AbortSignal.timeout(30_000) }),
      ),
    );
    for (const response of responses) {
      statuses.push(response.status);
      await response.arrayBuffer();
    }
  }
  return statuses;
}

describe("one client's concurrent requests through wrangler dev", () => {
  it("are all answered, none cancelled while queued behind another request's call to the object", async () => {
    const statuses = await flood("/roomy", "concurrent-client", 20, 32);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(origin.log.filter((entry) => entry.path === "/roomy")).toHaveLength(640);
  });

  it("admit exactly the limit, and only admitted requests reach the origin", async () => {
    const statuses = await flood("/tight/x", "concurrent-tight-client", 4, 32);
    expect(statuses.filter((status) => status === 200)).toHaveLength(40);
    expect(statuses.filter((status) => status === 429)).toHaveLength(128 - 40);
    expect(origin.log.filter((entry) => entry.path === "/tight/x")).toHaveLength(40);
  });
});
