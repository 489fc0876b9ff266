import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, describe, expect, it, vi } from "vitest";
import { identifyClient } from "../src/identity/identify.ts";
import { createApp } from "../src/worker/app.ts";

const app = createApp();
const ADMIN_TOKEN = "fuzz-admin-token-0c8e4a2f6b9d1e37";
const LIMIT = 30;
const PERIOD_SECONDS = 3600;
const POLICY = {
  rules: [
    { name: "per-hour", limit: LIMIT, period: PERIOD_SECONDS },
    { name: "writes", limit: 10, period: "1m", match: { methods: ["POST", "PUT", "PATCH", "DELETE"] } },
    { name: "reports", algorithm: "sliding-window-log", limit: 5, period: "1m", match: { path: "/reports/*" } },
  ],
  tiers: { pro: { "per-hour": { limit: 300 } } },
};
const bindings = { ...env, ADMIN_TOKEN, RATE_LIMIT_POLICY: JSON.stringify(POLICY) };
const REQUESTS_PER_RUN = 20;
const RUNS = 500;

const KEYS = Array.from({ length: 12 }, (_, i) => `fuzz-key-${i}`);
const IPS = ["192.0.2.1", "192.0.2.2", "2001:db8:1:2::1", "2001:db8:1:2::ffff", "::ffff:192.0.2.3", "198.51.100.4"];

// Printable ASCII and the control characters a header value may legally carry (not NUL, CR or LF).
const asciiChars = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constantFrom(0x01, 0x07, 0x08, 0x09, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f) },
);
const headerValue = fc.oneof(
  { weight: 300, arbitrary: fc.array(asciiChars, { maxLength: 40 }).map((codes) => String.fromCodePoint(...codes)) },
  // Rare: workerd prints a warning for every non-ASCII header value.
  {
    weight: 1,
    arbitrary: fc
      .array(fc.integer({ min: 0xa0, max: 0x2fff }), { minLength: 1, maxLength: 10 })
      .map((codes) => String.fromCodePoint(...codes)),
  },
  { weight: 10, arbitrary: fc.integer({ min: 200, max: 9000 }).map((length) => "v".repeat(length)) },
  // What workerd makes of bytes that are not UTF-8: U+FFFD in their place.
  { weight: 1, arbitrary: fc.constantFrom("cl\ufffd", "\ufffd", "a\ufffdb\ufffd") },
);
const headerName = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/),
  fc.constantFrom(
    "x-api-key",
    "authorization",
    "cf-connecting-ip",
    "x-forwarded-for",
    "content-type",
    "accept",
    "cookie",
    "upgrade",
    "connection",
  ),
);
const identity = fc.oneof(
  fc.constantFrom(...KEYS).map((key): Array<[string, string]> => [["x-api-key", key]]),
  fc.constantFrom(...KEYS).map((key): Array<[string, string]> => [["authorization", `Bearer ${key}`]]),
  // Several values in one header: two credentials, or the admin token beside a client's key.
  fc.constantFrom(...KEYS).map((key): Array<[string, string]> => [["authorization", `Bearer ${key}, Basic dXNlcjpwYXNz`]]),
  fc.constantFrom(...KEYS).map(
    (key): Array<[string, string]> => [
      ["x-api-key", key],
      ["authorization", `Bearer ${ADMIN_TOKEN}`],
    ],
  ),
  fc.constantFrom(...IPS).map((ip): Array<[string, string]> => [["cf-connecting-ip", ip]]),
  fc.constant<Array<[string, string]>>([]),
);
const segment = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("reports", "_ratelimit", "clients", "..", "%", "*", "health"));
/** Raw spellings of path parts, sent unencoded: what canonicalization and the 400 for unsafe paths are about. */
const spelling = fc.constantFrom(
  "reports",
  "REPORTS",
  "Reports;jsessionid=1",
  "x",
  "",
  ".",
  "..",
  "%2e%2E",
  "%2F",
  "%2f",
  "%5C",
  "\\",
  "%09",
  "%00",
  "%20",
  "reports.",
  "%72eports",
  "%C3%A9",
  "%ZZ",
  "%",
);
const query = fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 })), { maxLength: 4 });
const adminTarget = fc.oneof(
  fc.integer({ min: 0, max: 5 }).map((i) => `key:admin-target-${i}`),
  fc.constantFrom("ip:203.0.113.9", "ip:2001:db8:ffff::1", "user:1", "key:", "ip:not-an-ip"),
);
const adminBody = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc
    .record(
      {
        tier: fc.constantFrom("pro", "gold", ""),
        rules: fc.dictionary(
          fc.constantFrom("per-hour", "writes", "reports", "nope"),
          fc.record({ limit: fc.integer({ min: -5, max: 2000 }), burst: fc.integer({ min: -1, max: 50 }) }, { requiredKeys: [] }),
        ),
        expiresAt: fc.oneof(fc.constant("2020-01-01T00:00:00Z"), fc.constant(Date.now() + 3_600_000), fc.string()),
      },
      { requiredKeys: [] },
    )
    .map((body) => JSON.stringify(body)),
  fc.string({ maxLength: 200 }),
);

interface FuzzRequest {
  url: string;
  init: RequestInit;
  isAdmin: boolean;
}

const ordinaryRequest = fc
  .record({
    method: fc.constantFrom("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "get"),
    segments: fc.array(segment, { maxLength: 4 }),
    spelled: fc.option(fc.array(spelling, { minLength: 1, maxLength: 4 }), { freq: 3 }),
    query,
    identity,
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
    body: fc.oneof(fc.string({ maxLength: 300 }), fc.uint8Array({ maxLength: 2048 })),
  })
  .map(({ method, segments, spelled, query, identity, headers, body }): FuzzRequest => {
    const path = spelled ? spelled.join("/") : segments.map(encodeURIComponent).join("/");
    const url = new URL(`https://limiter.test/${path}`);
    for (const [name, value] of query) url.searchParams.append(name, value);
    const all = new Headers();
    for (const [name, value] of [...identity, ...headers]) all.append(name, value);
    const hasBody = !["GET", "HEAD", "get"].includes(method);
    return { url: url.href, init: { method, headers: all, ...(hasBody ? { body } : {}) }, isAdmin: false };
  });

const adminRequest = fc
  .record({
    action: fc.constantFrom("GET", "POST reset", "PUT override", "DELETE override", "GET health", "PATCH override"),
    target: adminTarget,
    authorized: fc.boolean(),
    body: adminBody,
  })
  .map(({ action, target, authorized, body }): FuzzRequest => {
    const [method = "GET", suffix] = action.split(" ") as [string, string | undefined];
    const path =
      suffix === "health" ? "/_ratelimit/health" : `/_ratelimit/clients/${encodeURIComponent(target)}${suffix ? `/${suffix}` : ""}`;
    const headers = new Headers(authorized ? { authorization: `Bearer ${ADMIN_TOKEN}` } : { "cf-connecting-ip": "192.0.2.250" });
    return { url: `https://limiter.test${path}`, init: { method, headers, ...(method === "GET" ? {} : { body }) }, isAdmin: true };
  });

const admitted = new Map<string, number>();
const startedAtMs = Date.now();
let sent = 0;
const unhandled: string[] = [];
const errorSpy = vi.spyOn(console, "error").mockImplementation((line: unknown) => {
  if (String(line).includes("unhandled-error")) unhandled.push(String(line));
});
const logSpy = vi.spyOn(console, "log").mockImplementation(() => {});
afterAll(() => {
  errorSpy.mockRestore();
  logSpy.mockRestore();
});

describe("the Worker under generated requests", () => {
  it(`never answers 5xx, rejects only with 4xx problem+json, and never admits a client past its budget (${REQUESTS_PER_RUN * RUNS} requests)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof({ weight: 5, arbitrary: ordinaryRequest }, { weight: 1, arbitrary: adminRequest }), {
          minLength: REQUESTS_PER_RUN,
          maxLength: REQUESTS_PER_RUN,
        }),
        async (requests) => {
          for (const request of requests) {
            const response = await app.request(request.url, request.init, bindings);
            sent++;
            if (response.status >= 500) {
              const sentHeaders = JSON.stringify([...new Headers(request.init.headers)]);
              expect.fail(
                `${response.status} for ${request.init.method} ${request.url} ${sentHeaders}: ${await response.text()} ${unhandled.join(" ")}`,
              );
            }
            if (response.status >= 400) {
              expect(response.headers.get("content-type"), `${response.status} for ${request.init.method} ${request.url}`).toBe(
                "application/problem+json",
              );
              if (request.init.method !== "HEAD") expect(((await response.json()) as { status: number }).status).toBe(response.status);
            } else {
              await response.arrayBuffer();
            }
            // Any request under the admin prefix is the admin API's (the token is set), not the limiter's.
            const isAdminPath = /^\/_ratelimit(\/|$)/.test(new URL(request.url).pathname);
            if (!request.isAdmin && !isAdminPath && response.status < 300) {
              const identity = await identifyClient(new Headers(request.init.headers));
              if ("clientId" in identity) admitted.set(identity.clientId, (admitted.get(identity.clientId) ?? 0) + 1);
            }
          }
        },
      ),
      { numRuns: RUNS },
    );

    expect(sent).toBeGreaterThanOrEqual(10_000);
    expect(unhandled).toEqual([]);
    const elapsedSeconds = (Date.now() - startedAtMs) / 1000;
    const budget = Math.floor(LIMIT + (LIMIT * elapsedSeconds) / PERIOD_SECONDS);
    for (const [clientId, count] of admitted) expect(count, clientId).toBeLessThanOrEqual(budget);
    // The pool is small enough that the limits were really reached.
    expect(Math.max(...admitted.values())).toBe(budget);
  }, 300_000);
});
