import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./dev-server.ts";

// Debian's chromium (`apt-get install -y chromium`; .ci/run installs it when missing): never a browser download.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const TOKEN = "dashboard-e2e-admin-token-8a4c1f7e2b6d9053";
const POLICY = JSON.stringify({
  rules: [
    { name: "api", limit: 3, period: "1h", match: { path: "/api/*" } },
    { name: "login", limit: 2, period: "1h", match: { path: "/login" }, block: { seconds: [600] } },
  ],
});
const auth = { Authorization: `Bearer ${TOKEN}` };

let limiter: DevServer;
let persistTo: string;
let browser: Browser;
const run = Date.now();
/** The rule's decisions before the tests: the readiness probe's. */
let before: { allowed: number; denied: number };

function send(key: string, path = "/api/items"): Promise<Response> {
  return fetch(`${limiter.url}${path}`, { headers: { "x-api-key": key }, signal: AbortSignal.timeout(30_000) });
}

async function statusesOf(key: string, count: number): Promise<number[]> {
  const statuses = [];
  for (let i = 0; i < count; i++) statuses.push((await send(key)).status);
  return statuses;
}

/** The samples of /metrics, parsed by a Prometheus text parser, and the rule's decisions of an outcome in them. */
async function scrape(): Promise<{ families: ReturnType<typeof parsePrometheusTextFormat>; total(outcome: string): number }> {
  const response = await fetch(`${limiter.url}/_ratelimit/metrics`, { headers: auth });
  expect(response.status).toBe(200);
  const families = parsePrometheusTextFormat(await response.text());
  const decisions = families.find((family) => family.name === "ratelimit_decisions_total");
  expect(decisions?.type).toBe("COUNTER");
  const total = (outcome: string) =>
    (decisions?.metrics ?? [])
      .filter((sample) => sample.labels?.rule === "api" && sample.labels.outcome === outcome)
      .reduce((sum, sample) => sum + Number(sample.value), 0);
  return { families, total };
}

function clientIdOf(key: string): string {
  return `key:${createHash("sha256").update(key).digest("hex")}`;
}

async function text(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (element) => element.textContent ?? "");
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium`);
  persistTo = mkdtempSync(join(tmpdir(), "limiter-dashboard-"));
  // The README's `npm start`: the limiter in front of the demo origin, ADMIN_TOKEN given as .dev.vars would.
  limiter = await startDevServer({ persistTo, npmStart: true, vars: { ADMIN_TOKEN: TOKEN, RATE_LIMIT_POLICY: POLICY } });
  // Root in CI containers: Chromium's sandbox needs user namespaces it may not have.
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  const { total } = await scrape();
  before = { allowed: total("allowed"), denied: total("denied") };
});

afterAll(async () => {
  await browser?.close();
  await limiter?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

describe("the dashboard, in headless Chromium against npm start", () => {
  it("logs in, shows the counters and chart change with traffic, resets a denied client and unblocks a boxed one, each once confirmed", async () => {
    const page = await browser.newPage();
    // A phone-sized screen.
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    const blocked: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) blocked.push(message.text());
    });
    const requests: string[] = [];
    page.on("request", (request) => requests.push(request.url()));

    await page.goto(`${limiter.url}/_ratelimit/dashboard`);
    await page.type("#token", TOKEN);
    await page.click("button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#updated")?.textContent !== "");
    expect(await page.evaluate(() => sessionStorage.getItem("edge-rate-limiter.admin-token"))).toBe(TOKEN);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);

    const alice = `dashboard-alice-${run}`;
    expect(await statusesOf(alice, 6)).toEqual([200, 200, 200, 429, 429, 429]);
    await page.waitForFunction(() => document.querySelector("#tile-denied")?.textContent === "3", { timeout: 20_000 });
    expect(await text(page, "#tile-allowed")).toBe(String(before.allowed + 3));
    const deniedLine = 'article[data-rule="api"] polyline[data-outcome="denied"]';
    const chartBefore = await page.$eval(deniedLine, (line) => line.getAttribute("points"));

    const bob = `dashboard-bob-${run}`;
    expect(await statusesOf(bob, 5)).toEqual([200, 200, 200, 429, 429]);
    await page.waitForFunction(() => document.querySelector("#tile-denied")?.textContent === "5", { timeout: 20_000 });
    const chartAfter = await page.$eval(deniedLine, (line) => line.getAttribute("points"));
    expect(chartAfter).not.toBe(chartBefore);
    expect(await page.$eval('article[data-rule="api"] .denied', (legend) => legend.getAttribute("data-total"))).toBe("5");

    // Alice, denied most, heads the table; reset her from the page, and she is admitted again.
    const aliceRow = `tr[data-client="${clientIdOf(alice)}"]`;
    await page.waitForSelector(aliceRow);
    expect(await page.$eval("#top-denied tr", (row) => row.getAttribute("data-client"))).toBe(clientIdOf(alice));
    await page.click(`${aliceRow} button:nth-of-type(1)`);
    await page.waitForFunction(() => document.querySelector("#inspected")?.textContent?.includes('"remaining": 0'));
    await page.click(`${aliceRow} button:nth-of-type(2)`);
    await page.waitForSelector("#confirm[open]");
    expect(await text(page, "#confirm-message")).toContain(clientIdOf(alice));
    await page.click("#confirm-ok");
    await page.waitForFunction(() => document.querySelector("#action-result")?.textContent?.startsWith("Reset "));
    expect((await send(alice)).status).toBe(200);

    // Carol exhausts the login rule and is boxed for 600 s; Dave is blocked by hand. Both are listed.
    const carol = `dashboard-carol-${run}`;
    const dave = `dashboard-dave-${run}`;
    expect((await Promise.all([0, 1, 2].map(() => send(carol, "/login")))).map(({ status }) => status).sort()).toContain(429);
    const byHand = await fetch(`${limiter.url}/_ratelimit/clients/${encodeURIComponent(`id:${clientIdOf(dave)}`)}/block`, {
      method: "PUT",
      headers: auth,
      body: JSON.stringify({ seconds: 3600 }),
    });
    expect(byHand.status).toBe(200);
    const carolRow = `#blocks tr[data-client="${clientIdOf(carol)}"]`;
    const daveRow = `#blocks tr[data-client="${clientIdOf(dave)}"]`;
    await page.waitForSelector(carolRow, { timeout: 20_000 });
    await page.waitForSelector(daveRow, { timeout: 20_000 });
    expect(await text(page, `${carolRow} td:nth-of-type(2)`)).toBe("penalty box: login");
    expect(await text(page, `${daveRow} td:nth-of-type(2)`)).toBe("by hand (every rule)");
    // Dave's block ends last: listed first.
    expect(await page.$eval("#blocks tr", (row) => row.getAttribute("data-client"))).toBe(clientIdOf(dave));
    // Cancelled, nothing changes; confirmed, Carol is unblocked and leaves the list.
    await page.click(`${carolRow} button`);
    await page.waitForSelector("#confirm[open]");
    await page.click("#confirm-cancel");
    const listed = async () => {
      const response = await fetch(`${limiter.url}/_ratelimit/blocks`, { headers: auth });
      return ((await response.json()) as { blocks: Array<{ client: string }> }).blocks.map(({ client }) => client);
    };
    expect(await listed()).toContain(clientIdOf(carol));
    await page.click(`${carolRow} button`);
    await page.waitForSelector("#confirm[open]");
    await page.click("#confirm-ok");
    await page.waitForFunction((row) => document.querySelector(row) === null, { timeout: 20_000 }, carolRow);
    expect(await text(page, "#action-result")).toBe(`Unblocked ${clientIdOf(carol)}.`);
    expect(await page.$$eval("#blocks tr", (rows) => rows.map((row) => row.getAttribute("data-client")))).toEqual([clientIdOf(dave)]);
    expect(await listed()).not.toContain(clientIdOf(carol));

    // Nothing on a phone's width scrolls sideways but the table's own box.
    // On a phone the layout viewport widens to what overflows: the page must stay the screen's width.
    expect(await page.evaluate(() => [window.innerWidth, document.documentElement.scrollWidth])).toEqual([390, 390]);
    expect(blocked).toEqual([]);
    expect(requests.every((url) => url.startsWith(limiter.url))).toBe(true);

    // Signing out forgets the token.
    await page.click("#logout");
    expect(await page.evaluate(() => sessionStorage.getItem("edge-rate-limiter.admin-token"))).toBeNull();
    await page.close();
  });

  it("serves /metrics that a Prometheus text parser reads, its counters matching the traffic sent", async () => {
    const { families, total } = await scrape();
    // The first test's traffic, Alice's request after her reset included: nothing else reached the limiter.
    expect(total("allowed") - before.allowed).toBe(3 + 3 + 1);
    expect(total("denied") - before.denied).toBe(3 + 2);
    const latency = families.find((family) => family.name === "ratelimit_object_call_seconds");
    expect(latency?.type).toBe("HISTOGRAM");
    expect(Number(latency?.metrics[0]?.count)).toBeGreaterThan(0);
    expect(families.find((family) => family.name === "ratelimit_near_limit_total")?.type).toBe("COUNTER");
  });
});
