// The dashboard's page script: sign-in, the admin API's calls, confirmations, the tiles and the refresh loop. Served
// inline after dashboard-charts.page.js, dashboard-clients.page.js and dashboard-tables.page.js, as one script
// (dashboard-response.ts), under a CSP that allows it by hash.
//
// The page holds no secret: the admin token is typed in, kept in this tab's sessionStorage and sent as Bearer to
// the admin API beside this page (./stats, ./clients/...), and to nothing else (connect-src 'self').
const TOKEN_KEY = "edge-rate-limiter.admin-token";
/** How often each range is read again: a day's read carries 288 spans of every metrics object. */
const REFRESH_MS = { "15m": 5000, "1h": 5000, "24h": 30000 };
const RANGE_LABELS = { "15m": "last 15 minutes", "1h": "last hour", "24h": "last 24 hours" };
const $ = (id) => document.getElementById(id);
let refreshTimer;
let range = "1h";
/** The policy in force (GET ./policy), read at sign-in. */
let policy;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** An admin API call: its JSON, or an Error with the problem's detail (and `errors`, a 400's fields). */
async function api(path, init = {}) {
  // Signed out: nothing is sent, so that no call without the token counts as a failed authentication.
  if (!token()) throw new Error("unauthorized");
  const headers = { Authorization: `Bearer ${token()}` };
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...init, headers, cache: "no-store" });
  if (response.status === 401) {
    signOut("The admin token was not accepted.");
    throw new Error("unauthorized");
  }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new Error(body.detail ?? `${response.status} ${response.statusText}`);
    error.errors = body.errors ?? [];
    error.status = response.status;
    throw error;
  }
  return body;
}

/** An element with properties (`dataset` and `title` included) and children (strings become text, never markup). */
function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "dataset") Object.assign(element.dataset, value);
    else element[name] = value;
  }
  element.append(...children.filter((child) => child !== undefined && child !== null));
  return element;
}

/** A client id as the tables show it: an IP client by its address, a key's by a short prefix of its hash. */
// biome-ignore lint/correctness/noUnusedVariables: called by the other page scripts, served in the same script.
function shortId(id) {
  if (id.startsWith("ip:")) return id.slice(3);
  const colon = id.lastIndexOf(":");
  return colon >= 0 && id.length - colon > 13 ? `${id.slice(0, colon + 13)}…` : id;
}

function count(value) {
  return (value ?? 0).toLocaleString();
}

function percent(part, whole) {
  return whole === 0 ? "–" : `${((100 * part) / whole).toFixed(1)} %`;
}

function milliseconds(seconds) {
  return seconds === null || seconds === undefined ? "–" : `${(seconds * 1000).toFixed(1)} ms`;
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(refreshTimer);
  $("dashboard").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

async function show() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  try {
    policy = await api("./policy");
    renderPolicy(policy);
    prepareLookup(policy);
  } catch (error) {
    if (error.message === "unauthorized") return;
    $("error").textContent = `Could not load the policy: ${error.message}`;
  }
  refresh();
}

/** Resolves true once the operator confirms `message` in the page's dialog, false if they cancel it. */
function confirmed(message) {
  const dialog = $("confirm");
  $("confirm-message").textContent = message;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

/** Runs an admin action once confirmed, says how it went, and reads everything again. */
// biome-ignore lint/correctness/noUnusedVariables: called by the other page scripts, served in the same script.
async function act(question, action, done) {
  if (!(await confirmed(question))) return;
  try {
    const answer = await action();
    $("action-result").textContent = done;
    afterAction(answer);
  } catch (error) {
    $("action-result").textContent = `Failed: ${error.message}`;
  }
  refresh();
}

// biome-ignore lint/correctness/noUnusedVariables: called by the other page scripts, served in the same script.
function actionButton(label, onClick) {
  return el("button", { type: "button", textContent: label, onclick: onClick });
}

function renderTiles(stats) {
  const summary = stats.inRange;
  const { allowed, denied } = summary.requests;
  const admitted = allowed.object + allowed.lease + allowed.cached_denial;
  const refused = denied.object + denied.lease + denied.cached_denial;
  const rules = Object.values(summary.rules);
  const total = (outcome) => rules.reduce((sum, rule) => sum + rule.outcomes[outcome], 0);
  $("range-label").textContent = `(${RANGE_LABELS[stats.range.name]})`;
  $("tile-allowed").textContent = count(admitted);
  $("tile-denied").textContent = count(refused);
  // The last full minute's rate: the current one is still being counted.
  const lastMinute = stats.minutes.find((minute) => minute.startMs === stats.range.endMs - stats.range.stepMs - 60000);
  const rate = (outcome) => {
    const counts = lastMinute?.requests[outcome];
    return counts ? (counts.object + counts.lease + counts.cached_denial) / 60 : 0;
  };
  if (stats.range.stepMs === 60000) {
    $("tile-allowed-rate").textContent = `${rate("allowed").toFixed(2)}/s over the last full minute`;
    $("tile-denied-rate").textContent = `${rate("denied").toFixed(2)}/s over the last full minute`;
  } else {
    $("tile-allowed-rate").textContent = "";
    $("tile-denied-rate").textContent = "";
  }
  $("tile-shadow").textContent = count(total("shadow_denied"));
  $("tile-near").textContent = count(rules.reduce((sum, rule) => sum + rule.nearLimit, 0));
  $("tile-degraded").textContent = count(total("degraded_allowed") + total("degraded_denied"));
  $("tile-lease").textContent = percent(allowed.lease, admitted + refused);
  $("tile-cached").textContent = percent(denied.cached_denial, admitted + refused);
  $("tile-objects").textContent = `${milliseconds(summary.objectCalls.p50Seconds)} / ${milliseconds(summary.objectCalls.p99Seconds)}`;
  $("tile-objects-count").textContent = `${count(summary.objectCalls.count)} calls`;
  const origin = summary.origin;
  const answered = origin ? origin.answers["2xx"] + origin.answers["3xx"] + origin.answers["4xx"] + origin.answers["5xx"] : 0;
  $("tile-origin-5xx").textContent = origin ? count(origin.answers["5xx"]) : "–";
  $("tile-origin-answered").textContent = origin ? `of ${count(answered)} answered` : "nothing proxied";
  $("tile-origin-failed").textContent = origin ? `${count(origin.answers.unreachable)} / ${count(origin.answers.timeout)}` : "–";
  $("tile-origin-latency").textContent = origin
    ? `${milliseconds(origin.latency.p50Seconds)} / ${milliseconds(origin.latency.p99Seconds)}`
    : "–";
}

let refreshing = false;
let refreshAgain = false;

/** Reads the admin API and redraws; one read at a time, another asked meanwhile following it. */
async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  clearTimeout(refreshTimer);
  try {
    const [stats, blocks, holdings] = await Promise.all([api(`./stats?range=${range}`), api("./blocks"), api("./holdings")]);
    renderTiles(stats);
    renderCharts(stats);
    renderTopDenied(stats);
    renderBlocks(blocks);
    renderHoldings(holdings.leases, "leases", "leases-count", "No lease in force.");
    renderHoldings(holdings.holds, "holds", "holds-count", "No hold awaits its settlement.");
    $("error").textContent = "";
    $("updated").textContent = `updated ${new Date(stats.generatedAtMs).toLocaleTimeString()}`;
  } catch (error) {
    if (error.message === "unauthorized") return;
    $("error").textContent = `Could not load the metrics: ${error.message}`;
  } finally {
    refreshing = false;
  }
  if (!token()) return;
  if (refreshAgain) {
    refreshAgain = false;
    refresh();
  } else {
    refreshTimer = setTimeout(refresh, REFRESH_MS[range]);
  }
}

for (const button of document.querySelectorAll("[data-range]")) {
  button.addEventListener("click", () => {
    range = button.dataset.range;
    for (const other of document.querySelectorAll("[data-range]")) other.setAttribute("aria-pressed", String(other === button));
    refresh();
  });
}
$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value);
  $("token").value = "";
  show();
});
$("logout").addEventListener("click", () => signOut());
wireLookup();
if (token()) show();
