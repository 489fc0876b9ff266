import page from "./dashboard.html";

/** The hash of an inline element's text as a CSP source: `'sha256-<base64>'` (CSP Level 3, §2.3.1). */
async function hashSource(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return `'sha256-${btoa(String.fromCharCode(...digest))}'`;
}

/** The text of the page's one element `tag`. */
function inlineText(tag: "script" | "style"): string {
  const match = page.match(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`));
  if (!match?.[1]) throw new Error(`dashboard.html has no <${tag}>`);
  return match[1];
}

let contentSecurityPolicy: Promise<string> | undefined;

/**
 * The page's Content-Security-Policy: nothing but its own script and style, by hash, and requests to this origin. So
 * an injected script or a client id crafted as markup cannot run, and the page cannot be framed or send the token
 * elsewhere.
 */
export function dashboardContentSecurityPolicy(): Promise<string> {
  contentSecurityPolicy ??= Promise.all([hashSource(inlineText("script")), hashSource(inlineText("style"))]).then(([script, style]) =>
    [
      "default-src 'none'",
      `script-src ${script}`,
      `style-src ${style}`,
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
  return new Response(page, {
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": await dashboardContentSecurityPolicy(),
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    },
  });
}
