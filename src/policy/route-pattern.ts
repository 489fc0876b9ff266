import type { Policy, Rule } from "./schema.ts";

/** A rule's path pattern as a regular expression: `*` matches any run of characters, `/` included. */
function patternOf(path: string): RegExp {
  const escaped = path.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
}

const patterns = new Map<string, RegExp>();

/** Whether a rule applies to a request with this method and path. */
export function isMatching(rule: Rule, method: string, path: string): boolean {
  const match = rule.match;
  if (!match) return true;
  if (match.methods && !match.methods.includes(method.toUpperCase())) return false;
  if (match.path === undefined) return true;
  let pattern = patterns.get(match.path);
  if (!pattern) {
    pattern = patternOf(match.path);
    patterns.set(match.path, pattern);
  }
  return pattern.test(path);
}

/** The rules that apply to a request. Tiers and overrides are applied by the client's object, which knows its override. */
export function matchingRules(policy: Policy, method: string, path: string): Rule[] {
  return policy.rules.filter((rule) => isMatching(rule, method, path));
}
