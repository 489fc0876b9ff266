/** How one rule of a policy, and the limits a tier or an override sets for one, are written and checked. */

import * as v from "valibot";
import { algorithmFor, algorithmNames } from "../limiter/registry.ts";
import { hasBurst, noBurstProblem } from "./limits.ts";
import { issueAt, strictFields } from "./schema-issues.ts";
import type { Limits, Rule } from "./types.ts";

const SECONDS_PER_UNIT = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
export const MAX_PERIOD_SECONDS = 7 * 86_400;
/** Keeps token-bucket arithmetic in exact integers: burst × period in ms stays below 2^53. */
const MAX_LIMIT = 1_000_000;

/** A whole number between `min` and `max`, each failure told in its own words. */
export function wholeNumber(messages: { type: string; whole: string; min: string; max: string }, min: number, max: number) {
  return v.pipe(v.number(messages.type), v.integer(messages.whole), v.minValue(min, messages.min), v.maxValue(max, messages.max));
}

/** Seconds as a whole number, or a duration string such as "10s", "1m", "1h", "1d". */
const PERIOD_FORMAT = 'must be a number of seconds or a duration such as "10s", "1m", "1h", "1d"';
const periodSchema = v.pipe(
  // Typed as what a policy may write (seconds or a duration); anything else gets the one message that says what a
  // period is.
  v.custom<number | string>((value) => typeof value === "number" || typeof value === "string", PERIOD_FORMAT),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const { value } = dataset;
    if (typeof value === "number") return value;
    const match = /^(\d+)\s*([smhd])$/.exec(value.trim());
    if (!match) {
      addIssue({ message: PERIOD_FORMAT });
      return NEVER;
    }
    return Number(match[1]) * SECONDS_PER_UNIT[match[2] as keyof typeof SECONDS_PER_UNIT];
  }),
  wholeNumber(
    {
      type: PERIOD_FORMAT,
      whole: "must be a whole number of seconds",
      min: "must be at least 1 second",
      max: `must be at most ${MAX_PERIOD_SECONDS} seconds (7 days)`,
    },
    1,
    MAX_PERIOD_SECONDS,
  ),
);

const countSchema = (what: string) =>
  wholeNumber(
    {
      type: `must be an integer >= 1 (${what})`,
      whole: "must be an integer >= 1",
      min: "must be an integer >= 1",
      max: `must be at most ${MAX_LIMIT}`,
    },
    1,
    MAX_LIMIT,
  );

/** The longest block of a penalty ladder: 30 days. */
const MAX_BLOCK_SECONDS = 30 * 86_400;

/** A rule's penalty ladder (`block`): how long each block lasts, and how many denials start one. */
const AFTER = "must be an integer from 1 to 1000";
const AFTER_MESSAGES = { type: AFTER, whole: AFTER, min: AFTER, max: AFTER };

const blockSchema = strictFields({
  seconds: v.pipe(
    v.array(
      wholeNumber(
        {
          type: "must be a whole number of seconds >= 1",
          whole: "must be a whole number of seconds >= 1",
          min: "must be a whole number of seconds >= 1",
          max: `must be at most ${MAX_BLOCK_SECONDS} (30 days)`,
        },
        1,
        MAX_BLOCK_SECONDS,
      ),
      "must be a list of durations in seconds, such as [60, 600, 3600]",
    ),
    v.check((seconds: number[]) => seconds.length >= 1 && seconds.length <= 10, "must list 1 to 10 durations"),
    v.check(
      (seconds: number[]) => seconds.every((each, index) => index === 0 || each >= (seconds[index - 1] as number)),
      "must not get shorter: each step of the ladder lasts at least as long as the one before",
    ),
  ),
  after: v.optional(wholeNumber(AFTER_MESSAGES, 1, 1000), 1),
});

const MAX_LOG_LIMIT = 10_000;
export const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Whether a name is one every JavaScript object already answers to (`__proto__`, `constructor`, `toString`, …): as a
 * rule or tier name it would be found where none was defined, so it is refused.
 */
export function isReservedName(name: string): boolean {
  return name === "__proto__" || name in Object.prototype;
}

/** What a policy that uses a reserved name as a rule or tier name is told. */
export const RESERVED_NAME_PROBLEM = "must not be a name every JavaScript object has (__proto__, constructor, toString, …)";

const matchSchema = strictFields({
  methods: v.optional(
    v.pipe(
      v.array(
        v.pipe(
          v.string("must be an HTTP method"),
          v.transform((method: string) => method.toUpperCase()),
          v.regex(/^[A-Z]+$/, "must be an HTTP method such as GET"),
        ),
        "must be a list of HTTP methods",
      ),
      v.minLength(1, "must list at least one method"),
    ),
  ),
  path: v.optional(
    v.pipe(
      v.string("must be a path pattern"),
      v.regex(/^\/[^\s?#]*$/, 'must start with "/" and contain no spaces, "?" or "#" (use * as a wildcard)'),
    ),
  ),
});

/**
 * The algorithms that can hold a charge until a response settles it (`count`): those whose buckets refill no higher
 * than what holds and leases leave of them (`Leasing`), so that a refund long after the charge is exact.
 */
const HOLDING_ALGORITHMS = algorithmNames.filter((name) => algorithmFor(name).leasing !== undefined);

/** A rule's `key` and a dimension's name: lower case, so that one spelling names one budget. */
export const KEY_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

const ruleFields = strictFields({
  name: v.pipe(
    v.string("must be a string"),
    v.regex(NAME, "must be 1-64 characters of A-Z a-z 0-9 _ . -"),
    v.check((name: string) => !isReservedName(name), RESERVED_NAME_PROBLEM),
  ),
  match: v.optional(matchSchema),
  algorithm: v.optional(v.picklist(algorithmNames, `must be one of: ${algorithmNames.join(", ")}`), "token-bucket"),
  limit: countSchema("requests per period"),
  period: periodSchema,
  burst: v.optional(countSchema("largest burst")),
  cost: v.optional(countSchema("units charged per request"), 1),
  mode: v.optional(v.picklist(["enforce", "shadow"], 'must be "enforce" or "shadow"'), "enforce"),
  onError: v.optional(v.picklist(["allow", "deny"], 'must be "allow" or "deny"'), "allow"),
  key: v.optional(
    v.pipe(
      v.string("must be a string"),
      v.regex(KEY_NAME, 'must be "client", "global" or a dimension\'s name (1-32 characters of a-z 0-9 _ -, a letter first)'),
    ),
  ),
  scope: v.optional(v.picklist(["client", "global"], 'must be "client" or "global"')),
  count: v.optional(v.picklist(["all", "failed", "successful"], 'must be "all", "failed" or "successful"'), "all"),
  block: v.optional(blockSchema),
  resetOnSuccess: v.optional(v.boolean("must be true or false"), false),
});

type RuleFields = v.InferOutput<typeof ruleFields>;

/** The key a rule counts by: its `key`, or `scope`, the older spelling of `key: "client"` and `key: "global"`. */
function keyOf(rule: { key?: string | undefined; scope?: "client" | "global" | undefined }): string {
  return rule.key ?? rule.scope ?? "client";
}

/** What is wrong with a rule whose every field is valid on its own: each problem at the field it names. */
function ruleProblems(rule: RuleFields): Array<[field: keyof RuleFields, message: string]> {
  const problems: Array<[keyof RuleFields, string]> = [];
  if (rule.burst !== undefined && !hasBurst(rule.algorithm)) {
    problems.push(["burst", noBurstProblem(rule.algorithm)]);
  }
  const capacity = rule.burst ?? rule.limit;
  if (capacity >= 1 && rule.cost > capacity) {
    const field = rule.burst === undefined ? "limit" : "burst";
    problems.push(["cost", `must not exceed ${field} (${capacity}): such a request could never be admitted`]);
  }
  if (rule.key !== undefined && rule.scope !== undefined && rule.key !== rule.scope) {
    problems.push([
      "scope",
      `is the older spelling of key ("client" or "global"), and says otherwise than key: "${rule.key}"; give key alone`,
    ]);
  }
  if (rule.count !== "all" && algorithmFor(rule.algorithm).leasing === undefined) {
    problems.push([
      "count",
      `needs an algorithm that can hold a charge until the response settles it (${HOLDING_ALGORITHMS.join(", ")}), not ${rule.algorithm}`,
    ]);
  }
  if (rule.resetOnSuccess && rule.count !== "failed") {
    problems.push(["resetOnSuccess", 'needs count: "failed": only a rule that waits for the outcome knows a success']);
  }
  if (rule.block !== undefined && rule.mode === "shadow") {
    problems.push(["block", "is for an enforcing rule: a shadow rule never blocks"]);
  }
  if (rule.block !== undefined && keyOf(rule) === "global") {
    problems.push(["block", "would block every client at once: give it to a rule of the client or of a dimension"]);
  }
  if (rule.algorithm === "sliding-window-log" && rule.limit > MAX_LOG_LIMIT) {
    problems.push([
      "limit",
      `must be at most ${MAX_LOG_LIMIT} for sliding-window-log, which stores one timestamp per request (use sliding-window-counter)`,
    ]);
  }
  return problems;
}

export const ruleSchema = v.pipe(
  ruleFields,
  v.rawCheck(({ dataset, addIssue }) => {
    // As the policy's own checks do: only a rule whose fields are each valid, which is then in its parsed shape.
    if (!dataset.typed) return;
    for (const [field, message] of ruleProblems(dataset.value)) addIssue(issueAt(dataset.value, [field], message));
  }),
  v.transform(
    (rule: RuleFields): Rule => ({
      name: rule.name,
      ...(rule.match ? { match: rule.match } : {}),
      algorithm: rule.algorithm,
      limit: rule.limit,
      periodSeconds: rule.period,
      burst: rule.burst ?? rule.limit,
      cost: rule.cost,
      mode: rule.mode,
      onError: rule.onError,
      key: keyOf(rule),
      scope: keyOf(rule) === "client" ? "client" : "global",
      ...(rule.count === "all" ? {} : { count: rule.count }),
      ...(rule.block ? { block: rule.block } : {}),
      ...(rule.resetOnSuccess ? { resetOnSuccess: true as const } : {}),
    }),
  ),
);

/** Limits a tier or an override sets for one rule. */
export const limitsSchema = v.pipe(
  strictFields({
    limit: v.optional(countSchema("requests per period")),
    period: v.optional(periodSchema),
    burst: v.optional(countSchema("largest burst")),
  }),
  v.transform(
    ({ limit, period, burst }: { limit?: number | undefined; period?: number | undefined; burst?: number | undefined }): Limits => ({
      limit,
      periodSeconds: period,
      burst,
    }),
  ),
);
