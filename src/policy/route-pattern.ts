import type { RuleMatch } from "./types.ts";

/** Whether a request with this method and path is one a rule applies to. */
export type RouteMatcher = (method: string, path: string) => boolean;

/** A rule's path pattern as a regular expression: `*` matches any run of characters, `/` included. */
function patternOf(path: string): RegExp {
  const escaped = path.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
}

/** The matcher of a rule's `match`: every request when it has none. */
export function routeMatcher(match: RuleMatch | undefined): RouteMatcher {
  if (!match) return () => true;
  const { methods } = match;
  const pattern = match.path === undefined ? undefined : patternOf(match.path);
  return (method, path) => (!methods || methods.includes(method.toUpperCase())) && (!pattern || pattern.test(path));
}
