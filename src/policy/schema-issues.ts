/** How the policy's schemas name a problem: at a path, in words that say what to fix. */

import * as v from "valibot";
import { formatPath } from "./format-path.ts";

/**
 * An issue for a check's `addIssue` at `keys` below `input` (the value the check reads): `["rules", 2, "name"]`
 * becomes `rules[2].name` in the problem.
 */
export function issueAt(
  input: unknown,
  keys: readonly [string | number, ...(string | number)[]],
  message: string,
): { message: string; path: [v.IssuePathItem, ...v.IssuePathItem[]] } {
  let value: unknown = input;
  const path = keys.map((key) => {
    const parent = value;
    value = typeof parent === "object" && parent !== null ? (parent as Record<string | number, unknown>)[key] : undefined;
    return typeof key === "number"
      ? ({ type: "array", origin: "value", input: parent as unknown[], key, value } as const)
      : ({ type: "object", origin: "value", input: parent as Record<string, unknown>, key, value } as const);
  });
  return { message, path: path as [v.IssuePathItem, ...v.IssuePathItem[]] };
}

/**
 * Each issue as `path: message`, `root` naming the whole value. A key a strict object does not know is told as
 * its object's problem (`rules[0]: Unrecognized key: "limt"`), and a type no message was written for as what it
 * expected.
 */
export function problemsOf(issues: readonly v.BaseIssue<unknown>[], root: string): string[] {
  return issues.map((issue) => {
    const keys = (issue.path ?? []).map((item) => item.key as PropertyKey);
    if (issue.type === "strict_object" && issue.expected === "never") {
      return `${formatPath(keys.slice(0, -1), root)}: Unrecognized key: ${JSON.stringify(keys.at(-1))}`;
    }
    return `${formatPath(keys, root)}: ${issue.message}`;
  });
}

/**
 * A strict object, as every part of a policy is: a field it does not know is a problem (a typo such as `limt` is not
 * ignored), and a required field left out is told what its own schema says of no value at all
 * (`rules[0].period: must be a number of seconds or a duration…`), not that a key is missing.
 */
export function strictFields<const TEntries extends v.ObjectEntries>(entries: TEntries) {
  return v.strictObject(entries, (issue) => {
    const key = issue.path?.at(-1)?.key;
    const field = typeof key === "string" && Object.hasOwn(entries, key) ? entries[key] : undefined;
    if (field && issue.received === "undefined") {
      const result = v.safeParse(field, undefined);
      if (!result.success && result.issues[0]) return result.issues[0].message;
    }
    return "must be an object";
  });
}

/**
 * The keys of `value` a record schema leaves out without a word, against prototype pollution: `__proto__`,
 * `prototype` and `constructor`. A policy or a body that names one is told so rather than have it ignored.
 */
export function droppedKeysOf(value: unknown): string[] {
  if (typeof value !== "object" || value === null) return [];
  return ["__proto__", "prototype", "constructor"].filter((key) => Object.hasOwn(value, key));
}
