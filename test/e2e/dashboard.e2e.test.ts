import { createHash, createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
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
  tiers: { pro: { api: { limit: 50 } } },
});
/** Where the harness writes the pages' screenshots: docs/images with `DASHBOARD_SCREENSHOTS=docs/images`. */
const SCREENSHOTS = process.env.DASHBOARD_SCREENSHOTS;
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

/** What /stats answers for a range, as the page reads it. */
async function statsOf(
  range: string,
): Promise<{ series: Array<{ startMs: number; rules: Record<string, { outcomes: Record<string, number> }> }> }> {
  const response = await fetch(`${limiter.url}/_ratelimit/stats?range=${range}`, { headers: auth });
  expect(response.status).toBe(200);
  return response.json();
}

/**
 * A page of the dashboard at a screen's size, signed in: every request it makes and every CSP violation it reports
 * are recorded.
 */
async function signedIn(viewport: Parameters<Page["setViewport"]>[0], url = limiter.url) {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  const requests: string[] = [];
  page.on("request", (request) => requests.push(`${request.method()} ${request.url()} ${request.postData() ?? ""}`));
  await page.evaluateOnNewDocument(() => {
    const seen: string[] = [];
    Object.assign(window, { cspViolations: seen });
    document.addEventListener("securitypolicyviolation", (event) => seen.push(`${event.violatedDirective} ${event.blockedURI}`));
  });
  await page.goto(`${url}/_ratelimit/dashboard`);
  await page.type("#token", TOKEN);
  await page.click("button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#updated")?.textContent !== "");
  /** The page's CSP violations and uncaught errors. */
  const violations = async () => [
    ...(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)),
    ...errors,
  ];
  return { page, requests, violations };
}

/** The legend's value of `series` in the chart `key` once the pointer is over its last point. */
async function hoverLastPoint(page: Page, key: string, series: string): Promise<{ value: string; startMs: number }> {
  const over = await page.$(`article[data-chart="${key}"] .u-over`);
  const box = await over?.boundingBox();
  if (!box) throw new Error(`no chart ${key}`);
  await over?.scrollIntoView();
  const inView = await over?.boundingBox();
  if (!inView) throw new Error(`no chart ${key}`);
  await page.mouse.move(inView.x + inView.width - 1, inView.y + inView.height / 2);
  const value = await page.$$eval(
    `article[data-chart="${key}"] .u-legend .u-series`,
    (rows, name) => rows.find((row) => row.querySelector(".u-label")?.textContent === name)?.querySelector(".u-value")?.textContent ?? "",
    series,
  );
  return { value, startMs: (await chartXs(page, key)).at(-1) ?? 0 };
}

/**
 * The x values (epoch ms) the page's chart `key` is drawn with: its uPlot's, in the page script's `charts` (a global
 * lexical binding, so read by name: `window.charts` is the element with that id).
 */
async function chartXs(page: Page, key: string): Promise<number[]> {
  const xs = (await page.evaluate(`charts.get(${JSON.stringify(key)})?.plot.data[0] ?? []`)) as number[];
  return xs.map((seconds) => seconds * 1000);
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  await page.screenshot({ path: resolve(SCREENSHOTS, name) as `${string}.png`, fullPage: true });
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
  it("on a phone: signs in, reads charts and ranges, finds a client by its key, overrides, resets and unblocks, each once confirmed", async () => {
    const { page, requests, violations } = await signedIn({ width: 390, height: 844, isMobile: true, hasTouch: true });
    expect(await page.evaluate(() => sessionStorage.getItem("edge-rate-limiter.admin-token"))).toBe(TOKEN);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);

    const alice = `dashboard-alice-${run}`;
    expect(await statusesOf(alice, 6)).toEqual([200, 200, 200, 429, 429, 429]);
    await page.waitForFunction(() => document.querySelector("#tile-denied")?.textContent === "3", { timeout: 20_000 });
    expect(await text(page, "#tile-allowed")).toBe(String(before.allowed + 3));
    const bob = `dashboard-bob-${run}`;
    expect(await statusesOf(bob, 5)).toEqual([200, 200, 200, 429, 429]);
    await page.waitForFunction(() => document.querySelector("#tile-denied")?.textContent === "5", { timeout: 20_000 });

    // The chart's legend, pointed at its last point, shows what /stats counts there.
    const hovered = await hoverLastPoint(page, "rule:api", "denied");
    const hour = await statsOf("1h");
    expect(hovered.value).toBe(String(hour.series.find((point) => point.startMs === hovered.startMs)?.rules.api?.outcomes.denied ?? 0));
    expect(Number(hovered.value)).toBeGreaterThan(0);

    // Ranges: 15 points of a minute, 288 of five minutes, with the same denials in the last.
    const pointsOf = async () => (await chartXs(page, "rule:api")).length;
    await page.click('[data-range="15m"]');
    await page.waitForFunction(() => document.querySelector("#range-label")?.textContent === "(last 15 minutes)");
    expect(await pointsOf()).toBe(15);
    await page.click('[data-range="24h"]');
    await page.waitForFunction(() => document.querySelector("#range-label")?.textContent === "(last 24 hours)");
    expect(await pointsOf()).toBe(288);
    expect(await text(page, "#chart-unit")).toBe("(requests per 5 minutes, last 24 hours)");
    const daily = await hoverLastPoint(page, "rule:api", "denied");
    const day = await statsOf("24h");
    expect(daily.value).toBe(String(day.series.find((point) => point.startMs === daily.startMs)?.rules.api?.outcomes.denied ?? 0));
    await page.click('[data-range="1h"]');
    await page.waitForFunction(() => document.querySelector("#range-label")?.textContent === "(last hour)");

    // Alice, by her raw key: hashed in the page (no RATE_LIMIT_KEY_SECRET here), never sent.
    expect(await text(page, "#lookup-note")).toBe("The key is hashed in this page, as the limiter hashes it; only its hash is sent.");
    await page.type("#lookup-value", alice);
    await page.click("#lookup button[type=submit]");
    const result = `#client .result[data-client="${clientIdOf(alice)}"]`;
    await page.waitForSelector(result);
    expect(await text(page, `${result} tr[data-rule="api"] td:nth-of-type(2)`)).toBe("0 of 3 per 1 h");
    expect(requests.some((request) => request.includes(alice))).toBe(false);

    // An override through the form: a wrong limit is named beside its field; then the pro tier, which inspect shows.
    await page.type(`${result} input[data-field="rules.api.limit"]`, "0");
    await page.click(`${result} form.override button[type=submit]`);
    await page.waitForFunction(
      (selector) => (document.querySelector(`${selector} [data-error-for="rules.api.limit"]`)?.textContent ?? "") !== "",
      {},
      result,
    );
    expect(await text(page, `${result} [data-error-for="rules.api.limit"]`)).toMatch(/^must be/);
    await page.$eval(`${result} input[data-field="rules.api.limit"]`, (input) => {
      (input as HTMLInputElement).value = "";
    });
    await page.select(`${result} select[name="tier"]`, "pro");
    await page.click(`${result} form.override button[type=submit]`);
    await page.waitForFunction((selector) => document.querySelector(`${selector} [data-fact="tier"]`)?.textContent === "pro", {}, result);
    expect(await text(page, `${result} tr[data-rule="api"] td:nth-of-type(2)`)).toBe("47 of 50 per 1 h");
    expect(await text(page, `${result} [data-fact="override"]`)).toBe("tier pro, until removed");

    // Reset through the confirmation: cancelled, nothing changes; confirmed, her bucket is full again.
    await page.click(`${result} .buttons button:nth-of-type(1)`);
    await page.waitForSelector("#confirm[open]");
    expect(await text(page, "#confirm-message")).toContain(clientIdOf(alice));
    await page.click("#confirm-cancel");
    await page.click(`${result} .buttons button:nth-of-type(1)`);
    await page.waitForSelector("#confirm[open]");
    await page.click("#confirm-ok");
    await page.waitForFunction(() => document.querySelector("#action-result")?.textContent?.startsWith("Reset "));
    await page.waitForFunction(
      (selector) => document.querySelector(`${selector} tr[data-rule="api"] td:nth-of-type(2)`)?.textContent === "50 of 50 per 1 h",
      {},
      result,
    );
    expect((await send(alice)).status).toBe(200);

    // Top denied: Bob by a short prefix of his id, the whole id on hover.
    const bobRow = `#top-denied tr[data-client="${clientIdOf(bob)}"]`;
    await page.waitForSelector(bobRow);
    expect(await page.$eval(`${bobRow} td.client`, (cell) => [cell.textContent, cell.getAttribute("title")])).toEqual([
      `${clientIdOf(bob).slice(0, 16)}…`,
      clientIdOf(bob),
    ]);

    // Carol exhausts the login rule and is boxed for 600 s; Dave is blocked by hand. Both are listed.
    const carol = `dashboard-carol-${run}`;
    const dave = `dashboard-dave-${run}`;
    expect((await Promise.all([0, 1, 2].map(() => send(carol, "/login")))).map(({ status }) => status)).toContain(429);
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
    expect(await text(page, "#tile-blocked")).toBe("2");
    // Dave's block ends last: listed first.
    expect(await page.$eval("#blocks tr", (row) => row.getAttribute("data-client"))).toBe(clientIdOf(dave));
    const listed = async () => {
      const response = await fetch(`${limiter.url}/_ratelimit/blocks`, { headers: auth });
      return ((await response.json()) as { blocks: Array<{ client: string }> }).blocks.map(({ client }) => client);
    };
    await page.click(`${carolRow} button`);
    await page.waitForSelector("#confirm[open]");
    await page.click("#confirm-cancel");
    expect(await listed()).toContain(clientIdOf(carol));
    await page.click(`${carolRow} button`);
    await page.waitForSelector("#confirm[open]");
    await page.click("#confirm-ok");
    await page.waitForFunction((row) => document.querySelector(row) === null, { timeout: 20_000 }, carolRow);
    expect(await text(page, "#action-result")).toBe(`Unblocked ${clientIdOf(carol)}.`);
    expect(await listed()).not.toContain(clientIdOf(carol));

    // The policy, read-only.
    expect(await text(page, '#policy-rules tr[data-rule="login"] td:nth-of-type(7)')).toBe("10 min after 1");

    // On a phone the layout viewport widens to what overflows: the page must stay the screen's width.
    expect(await page.evaluate(() => [window.innerWidth, document.documentElement.scrollWidth])).toEqual([390, 390]);
    expect(await violations()).toEqual([]);
    // Nothing leaves the page but for the admin API beside it (a data: URL is the browser's own date picker icon).
    const urls = requests.map((request) => request.split(" ")[1] ?? "");
    expect(urls.filter((url) => !url.startsWith(limiter.url) && !url.startsWith("data:"))).toEqual([]);
    await screenshot(page, "dashboard-phone.png");

    // Signing out forgets the token.
    await page.click("#logout");
    expect(await page.evaluate(() => sessionStorage.getItem("edge-rate-limiter.admin-token"))).toBeNull();
    await page.close();
  });

  it("on a desktop: fills the width, tiles in even rows and charts side by side, nothing scrolling sideways", async () => {
    // A login attempt of its own, so that both rules have a chart whatever ran before.
    expect((await send(`dashboard-erin-${run}`, "/login")).status).not.toBe(429);
    const { page, violations } = await signedIn({ width: 1280, height: 800 });
    await page.waitForSelector('article[data-chart="rule:api"]');
    await page.waitForSelector('article[data-chart="rule:login"]');
    // Twelve tiles in two rows of six.
    const tileRows = await page.$$eval(".tile", (tiles) => tiles.map((tile) => Math.round(tile.getBoundingClientRect().top)));
    expect(tileRows).toHaveLength(12);
    expect(new Set(tileRows).size).toBe(2);
    // The two rules' charts side by side, each about half the width.
    const charts = await page.$$eval("#charts .chart", (cards) => cards.map((card) => card.getBoundingClientRect().toJSON()));
    expect(charts[0]?.top).toBe(charts[1]?.top);
    expect(charts[0]?.width).toBeGreaterThan(500);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    // Leases and holds read from /holdings: none of these rules leases (3 an hour) or holds.
    expect(await text(page, "#leases")).toBe("No lease in force.");
    expect(await text(page, "#holds")).toBe("No hold awaits its settlement.");
    expect(await text(page, "#error")).toBe("");
    expect(await violations()).toEqual([]);
    await screenshot(page, "dashboard-desktop.png");
    await page.close();
  });

  it("where keys are hashed with RATE_LIMIT_KEY_SECRET: finds a key's client through the admin API, the key in a body only", async () => {
    const secret = "dashboard-e2e-key-secret-4f8a2c6e9b1d7053";
    const keyedState = mkdtempSync(join(tmpdir(), "limiter-dashboard-keyed-"));
    const keyed = await startDevServer({
      persistTo: keyedState,
      npmStart: true,
      vars: { ADMIN_TOKEN: TOKEN, RATE_LIMIT_POLICY: POLICY, RATE_LIMIT_KEY_SECRET: secret },
    });
    try {
      const key = `dashboard-frank-${run}`;
      const status = (await fetch(`${keyed.url}/api/items`, { headers: { "x-api-key": key } })).status;
      expect(status).toBe(200);
      const { page, requests, violations } = await signedIn({ width: 1280, height: 800 }, keyed.url);
      await page.waitForFunction(() => document.querySelector("#lookup-note")?.textContent?.includes("RATE_LIMIT_KEY_SECRET"));
      await page.type("#lookup-value", key);
      await page.click("#lookup button[type=submit]");
      const keyedId = `key:${createHmac("sha256", secret).update(key).digest("hex")}`;
      await page.waitForSelector(`#client .result[data-client="${keyedId}"]`);
      expect(await text(page, `#client .result tr[data-rule="api"] td:nth-of-type(2)`)).toBe("2 of 3 per 1 h");
      // The key went once, in the body of the lookup, and in no URL.
      const carrying = requests.filter((request) => request.includes(key));
      expect(carrying.map((request) => request.split(" ").slice(0, 2).join(" "))).toEqual([`POST ${keyed.url}/_ratelimit/clients/lookup`]);
      expect(await violations()).toEqual([]);
      await page.close();
    } finally {
      await keyed.stop();
      rmSync(keyedState, { recursive: true, force: true });
    }
  });

  it("serves /metrics that a Prometheus text parser reads, its counters matching the traffic sent", async () => {
    const { families, total } = await scrape();
    // The first test's traffic, Alice's request after her reset included: nothing else reached the api rule.
    expect(total("allowed") - before.allowed).toBe(3 + 3 + 1);
    expect(total("denied") - before.denied).toBe(3 + 2);
    const latency = families.find((family) => family.name === "ratelimit_object_call_seconds");
    expect(latency?.type).toBe("HISTOGRAM");
    expect(Number(latency?.metrics[0]?.count)).toBeGreaterThan(0);
    expect(families.find((family) => family.name === "ratelimit_near_limit_total")?.type).toBe("COUNTER");
  });
});
