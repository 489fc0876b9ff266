import { tryDecodeURIComponent } from "hono/utils/url";

/**
 * Request paths as the limiter reads them. A path has many spellings that origins route to one handler; a rule must
 * hold for all of them (docs/configuration.md, Paths). Two forms:
 * - the canonical path, which the shipped Worker matches on and forwards, so that the path a rule matched is the
 *   path the origin receives (`canonicalPath`);
 * - the matching form, what a rule's pattern is compared with: the path folded by the policy's `paths` options,
 *   so that spellings an origin may treat alike are alike (`matchingForm`).
 */

/** The canonical path of a request, or why it has none. */
export type CanonicalPath = { kind: "canonical"; path: string } | { kind: "refused"; problem: string };

/** How rules compare paths: the policy's `paths` field. */
export interface PathMatching {
  /** Whether `/Login` is another path than `/login`. @default false: origins such as Express ignore case */
  caseSensitive: boolean;
  /** Whether `/login/` is `/login`. @default "equivalent" */
  trailingSlash: "equivalent" | "distinct";
  /** Whether `;jsessionid=…` matrix parameters of a segment count. @default "ignored": Spring and Tomcat strip them */
  matrixParameters: "ignored" | "matched";
}

/** The folding a policy gets when it sets none: every choice that makes more spellings alike. */
export const DEFAULT_PATH_MATCHING: PathMatching = { caseSensitive: false, trailingSlash: "equivalent", matrixParameters: "ignored" };

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The canonical spelling of a URL's path (as `new URL()` already parsed it: dot segments resolved, `\` read as `/`):
 * escapes of unreserved characters decoded (RFC 3986 §2.3: `%6C` is `l`), the others' hex upper-cased, runs of
 * slashes merged (as nginx does). Refused: an encoded slash or backslash (`%2F`, `%5C`), which origins read as a
 * separator or not, and control characters, which no path needs.
 * @example canonicalPath("//%6Cogin") // { kind: "canonical", path: "/login" }
 */
export function canonicalPath(pathname: string): CanonicalPath {
  let problem: string | undefined;
  const decoded = pathname.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const code = Number.parseInt(hex, 16);
    if (code === 0x2f || code === 0x5c) problem ??= "an encoded slash or backslash (%2F, %5C) in the path: send the path with / itself";
    else if (code < 0x20 || code === 0x7f) problem ??= "a control character in the path";
    const character = String.fromCharCode(code);
    return UNRESERVED.test(character) ? character : `%${hex.toUpperCase()}`;
  });
  // Raw ones too, should a URL ever carry them unencoded.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
  if (problem === undefined && /[\u0000-\u001f\u007f\\]/.test(decoded)) problem = "a control character or backslash in the path";
  if (problem !== undefined) return { kind: "refused", problem };
  return { kind: "canonical", path: withoutDotSegments(decoded.replace(/\/{2,}/g, "/")) };
}

/**
 * Removes `.` and `..` segments (RFC 3986 §5.2.4), which decoding `%2E` could leave; the URL parser removes those
 * it sees itself.
 */
function withoutDotSegments(path: string): string {
  if (!/(^|\/)\.\.?(\/|$)/.test(path)) return path;
  const segments: string[] = [];
  for (const segment of path.split("/").slice(1)) {
    if (segment === "..") segments.pop();
    else if (segment !== ".") segments.push(segment);
  }
  const last = path.split("/").at(-1);
  return `/${segments.join("/")}${last === "." || last === ".." ? "/" : ""}`;
}

/**
 * A path as rules compare it: escapes decoded, slashes merged, and as the policy says, matrix parameters dropped,
 * a trailing slash dropped and the case folded. The trailing dots and whitespace of a segment are dropped too
 * (Windows servers ignore them). Folding only ever makes more spellings alike, so it can limit a request a rule did
 * not mean, never let one through that it did.
 * @example matchingForm("/LOGIN;x/", DEFAULT_PATH_MATCHING) // "/login"
 */
export function matchingForm(path: string, matching: PathMatching): string {
  // Every escape that decodes to a character, a malformed one kept as it is (Hono's own decoding of parameters).
  let folded = tryDecodeURIComponent(path);
  if (matching.matrixParameters === "ignored") folded = folded.replace(/;[^/]*/g, "");
  folded = folded.replace(/[.\s]+(?=\/|$)/g, "").replace(/\/{2,}/g, "/");
  if (matching.trailingSlash === "equivalent" && folded.length > 1) folded = folded.replace(/\/+$/, "");
  if (!matching.caseSensitive) folded = folded.toLowerCase();
  return folded === "" ? "/" : folded;
}
