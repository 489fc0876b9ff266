import type { PathMatching } from "../http/request-path.ts";
import type { RuleMatch } from "./types.ts";

/** Whether a request with this method and path (in its matching form, see `matchingForm`) is one a rule applies to. */
export type RouteMatcher = (method: string, matchingPath: string) => boolean;

/**
 * A rule's path pattern as a regular expression over matching forms: `*` matches any run of characters, `/`
 * included. The pattern is folded as paths are (its case, its trailing slash); when a trailing slash is equivalent,
 * `/api/*` matches `/api` too, as it matches `/api/`.
 */
function patternOf(path: string, matching: PathMatching): RegExp {
  let pattern = matching.caseSensitive ? path : path.toLowerCase();
  const anyBelow = matching.trailingSlash === "equivalent" && pattern.length > 2 && pattern.endsWith("/*");
  if (anyBelow) pattern = pattern.slice(0, -2);
  else if (matching.trailingSlash === "equivalent" && pattern.length > 1) pattern = pattern.replace(/\/+$/, "") || "/";
  const escaped = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}${anyBelow ? "(?:/.*)?" : ""}$`);
}

/**
 * The methods a rule applies to: those it lists, and HEAD with GET. HEAD is GET without the body (RFC 9110 §9.3.2),
 * and nearly every framework answers it with the GET handler, so a GET rule that left HEAD out would be a bypass.
 */
function methodsOf(listed: readonly string[]): string[] {
  const methods = listed.map((method) => method.toUpperCase());
  return methods.includes("GET") && !methods.includes("HEAD") ? [...methods, "HEAD"] : methods;
}

/** The matcher of a rule's `match`: every request when it has none. */
export function routeMatcher(match: RuleMatch | undefined, matching: PathMatching): RouteMatcher {
  if (!match) return () => true;
  const methods = match.methods && methodsOf(match.methods);
  const pattern = match.path === undefined ? undefined : patternOf(match.path, matching);
  return (method, path) => (!methods || methods.includes(method.toUpperCase())) && (!pattern || pattern.test(path));
}
