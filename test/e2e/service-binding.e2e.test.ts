import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer, withPackageFromSource } from "./dev-server.ts";

let caller: DevServer;
let persistTo: string;

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), "limiter-service-"));
  // The example's caller on the port and its limiter Worker beside it, as its README runs them (`npm run dev`).
  const limiter = withPackageFromSource("examples/service-binding/limiter/wrangler.jsonc", persistTo);
  caller = await startDevServer({ persistTo, vars: {}, configs: ["examples/service-binding/wrangler.jsonc", limiter] });
});

afterAll(async () => {
  await caller?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

describe("a Worker written for Cloudflare's rate-limit binding, bound to RateLimitService instead", () => {
  it("is limited exactly by the limiter Worker's checkout rule (5 per 10 s a key), each key on its own", async () => {
    const user = `alice-${Date.now()}`;
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const response = await fetch(`${caller.url}/?user=${user}`);
      statuses.push(response.status);
      await response.text();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const bob = await fetch(`${caller.url}/?user=bob-${Date.now()}`);
    expect(bob.status).toBe(200);
    expect(await bob.text()).toMatch(/^Checked out for bob-/);
  });
});
