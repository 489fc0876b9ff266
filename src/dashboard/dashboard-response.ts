/// <reference path="./inlined-text.d.ts" />
import uplotScript from "uplot/dist/uPlot.iife.min.js";
import uplotStyle from "uplot/dist/uPlot.min.css";
import page from "./dashboard.html";
import pageScript from "./dashboard.page.js";
import chartsScript from "./dashboard-charts.page.js";
import clientsScript from "./dashboard-clients.page.js";
import tablesScript from "./dashboard-tables.page.js";

/** The page's own scripts, in the order they run: one inline script, after uPlot's. */
const PAGE_SCRIPT = [chartsScript, clientsScript, tablesScript, pageScript].join("\n");

/**
 * The page as served: dashboard.html with uPlot's stylesheet before its own style, and uPlot's script and the page's
 * own scripts in place of its `<!-- scripts -->` mark. Everything inline, so that the CSP can allow each by hash.
 */
const PAGE = page
  .replace("<style>", () => `<style>${uplotStyle}</style>\n<style>`)
  .replace("<!-- scripts -->", () => `<script>${uplotScript}</script>\n<script>${PAGE_SCRIPT}</script>`);

/** The hash of an inline element's text as a CSP source: `'sha256-<base64>'` (CSP Level 3, §2.3.1). */
async function hashSource(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return `'sha256-${btoa(binary)}'`;
}

/** The text of each of the page's elements `tag`, in order. */
function inlineTexts(tag: "script" | "style"): string[] {
  const texts = [...PAGE.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((match) => match[1] ?? "");
  if (texts.length === 0) throw new Error(`dashboard.html has no <${tag}>`);
  return texts;
}

let contentSecurityPolicy: Promise<string> | undefined;

/**
 * The page's Content-Security-Policy: nothing but its own scripts and styles, by hash, and requests to this origin.
 * So an injected script or a client id crafted as markup cannot run, and the page cannot be framed or send the token
 * elsewhere.
 */
export function dashboardContentSecurityPolicy(): Promise<string> {
  contentSecurityPolicy ??= Promise.all([
    Promise.all(inlineTexts("script").map(hashSource)),
    Promise.all(inlineTexts("style").map(hashSource)),
  ]).then(([scripts, styles]) =>
    [
      "default-src 'none'",
      `script-src ${scripts.join(" ")}`,
      `style-src ${styles.join(" ")}`,
      "connect-src 'self'",
      "img-src data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  );
  return contentSecurityPolicy;
}

/** The dashboard: one static page, no secret in it, that reads the admin API beside it with the token typed in. */
export async function dashboardResponse(): Promise<Response> {
  return new Response(PAGE, {
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": await dashboardContentSecurityPolicy(),
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    },
  });
}

/** What `{prefix}/dashboard` answers while ADMIN_TOKEN is unset: the admin API is off, and how to turn it on. */
const DISABLED_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>Rate limiter dashboard: admin API disabled</title></head>
<body>
<h1>The admin API is disabled</h1>
<p>This rate limiter has no <code>ADMIN_TOKEN</code>, so its admin API and this dashboard are off: every other path
under their prefix is an ordinary path, limited and passed to the origin.</p>
<p>To enable them, generate a token with <code>openssl rand -hex 32</code>, then:</p>
<ul>
<li>locally, put <code>ADMIN_TOKEN=&lt;the token&gt;</code> in <code>.dev.vars</code> and restart <code>npm start</code>;</li>
<li>deployed, run <code>npx wrangler secret put ADMIN_TOKEN</code> and paste it.</li>
</ul>
<p>Then reload this page and sign in with the token (docs/admin-api.md).</p>
</body>
</html>
`;

/** The page of `{prefix}/dashboard` while ADMIN_TOKEN is unset: 404, saying how to enable the admin API. */
export function adminDisabledResponse(): Response {
  return new Response(DISABLED_PAGE, {
    status: 404,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": "default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
}
