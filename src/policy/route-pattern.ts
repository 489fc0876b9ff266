import type { RuleMatch } from "./types.ts";

/** Whether a request with this method and path is one a rule applies to. */
export type RouteMatcher = (method: string, path: string) => boolean;

/** A rule's path pattern as a regular expression: `*` matches any run of characters, `/` included. */
function patternOf(path: string): RegExp {
  const escaped = path.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
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
export function routeMatcher(match: RuleMatch | undefined): RouteMatcher {
  if (!match) return () => true;
  const methods = match.methods && methodsOf(match.methods);
  const pattern = match.path === undefined ? undefined : patternOf(match.path);
  return (method, path) => (!methods || methods.includes(method.toUpperCase())) && (!pattern || pattern.test(path));
}
