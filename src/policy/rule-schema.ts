/** How one rule of a policy, and the limits a tier or an override sets for one, are written and checked. */

import * as z from "zod/mini";
import { algorithmFor, algorithmNames } from "../limiter/registry.ts";
import { hasBurst, noBurstProblem } from "./limits.ts";
import type { Limits, Rule } from "./types.ts";

// zod/mini rather than zod: the same checks and messages, at a tenth of what every Worker that bundles the limiter
// parses at each cold start (docs/api.md, Bundle size). Every check here carries its own message but two kinds, worded
// here as zod's English locale words them, which would bring 2.7 KB of messages for checks this schema never makes.
// No JIT either, since Workers forbid code generation from strings.
z.config({
  jitless: true,
  customError: (issue) => {
    if (issue.code === "unrecognized_keys") {
      return `Unrecognized key${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.map((key) => JSON.stringify(key)).join(", ")}`;
    }
    if (issue.code === "invalid_type") return `Invalid input: expected ${issue.expected}`;
    return undefined;
  },
});

const SECONDS_PER_UNIT = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
export const MAX_PERIOD_SECONDS = 7 * 86_400;
/** Keeps token-bucket arithmetic in exact integers: burst × period in ms stays below 2^53. */
const MAX_LIMIT = 1_000_000;

/** A whole number between `min` and `max`, each failure told in its own words. */
export function wholeNumber(messages: { type: string; whole: string; min: string; max: string }, min: number, max: number) {
  return z.number({ error: messages.type }).check(
    z.refine((value: number) => Number.isInteger(value), { error: messages.whole }),
    z.minimum(min, { error: messages.min }),
    z.maximum(max, { error: messages.max }),
  );
}

/** Seconds as a whole number, or a duration string such as "10s", "1m", "1h", "1d". */
const PERIOD_FORMAT = 'must be a number of seconds or a duration such as "10s", "1m", "1h", "1d"';
const periodSchema = z.pipe(
  z.pipe(
    // Typed as what a policy may write (seconds or a duration), checked by the transform itself so that anything
    // else gets the one message that says what a period is.
    z.custom<number | string>(),
    z.transform((value: number | string, ctx) => {
      if (typeof value === "number") return value;
      const match = typeof value === "string" ? /^(\d+)\s*([smhd])$/.exec(value.trim()) : null;
      if (!match) {
        ctx.issues.push({ code: "custom", message: PERIOD_FORMAT, input: value });
        return z.NEVER;
      }
      return Number(match[1]) * SECONDS_PER_UNIT[match[2] as keyof typeof SECONDS_PER_UNIT];
    }),
  ),
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
const blockSchema = z.strictObject({
  seconds: z
    .array(
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
      { error: "must be a list of durations in seconds, such as [60, 600, 3600]" },
    )
    .check(
      z.refine((seconds: number[]) => seconds.length >= 1 && seconds.length <= 10, { error: "must list 1 to 10 durations" }),
      z.refine((seconds: number[]) => seconds.every((each, index) => index === 0 || each >= (seconds[index - 1] as number)), {
        error: "must not get shorter: each step of the ladder lasts at least as long as the one before",
      }),
    ),
  after: z._default(
    wholeNumber(
      {
        type: "must be an integer from 1 to 1000",
        whole: "must be an integer from 1 to 1000",
        min: "must be an integer from 1 to 1000",
        max: "must be an integer from 1 to 1000",
      },
      1,
      1000,
    ),
    1,
  ),
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

const matchSchema = z.strictObject({
  methods: z.optional(
    z
      .array(
        z.pipe(
          z.pipe(
            z.string({ error: "must be an HTTP method" }),
            z.transform((method: string) => method.toUpperCase()),
          ),
          z.string().check(z.regex(/^[A-Z]+$/, { error: "must be an HTTP method such as GET" })),
        ),
        { error: "must be a list of HTTP methods" },
      )
      .check(z.minLength(1, { error: "must list at least one method" })),
  ),
  path: z.optional(
    z
      .string({ error: "must be a path pattern" })
      .check(z.regex(/^\/[^\s?#]*$/, { error: 'must start with "/" and contain no spaces, "?" or "#" (use * as a wildcard)' })),
  ),
});

/**
 * The algorithms that can hold a charge until a response settles it (`count`): those whose buckets refill no higher
 * than what holds and leases leave of them (`Leasing`), so that a refund long after the charge is exact.
 */
const HOLDING_ALGORITHMS = algorithmNames.filter((name) => algorithmFor(name).leasing !== undefined);

/** A rule's `key` and a dimension's name: lower case, so that one spelling names one budget. */
export const KEY_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

const ruleFields = z.strictObject({
  name: z.string({ error: "must be a string" }).check(
    z.regex(NAME, { error: "must be 1-64 characters of A-Z a-z 0-9 _ . -" }),
    z.refine((name: string) => !isReservedName(name), { error: RESERVED_NAME_PROBLEM }),
  ),
  match: z.optional(matchSchema),
  algorithm: z._default(z.enum(algorithmNames, { error: `must be one of: ${algorithmNames.join(", ")}` }), "token-bucket"),
  limit: countSchema("requests per period"),
  period: periodSchema,
  burst: z.optional(countSchema("largest burst")),
  cost: z._default(countSchema("units charged per request"), 1),
  mode: z._default(z.enum(["enforce", "shadow"], { error: 'must be "enforce" or "shadow"' }), "enforce"),
  onError: z._default(z.enum(["allow", "deny"], { error: 'must be "allow" or "deny"' }), "allow"),
  key: z.optional(
    z
      .string({ error: "must be a string" })
      .check(
        z.regex(KEY_NAME, { error: 'must be "client", "global" or a dimension\'s name (1-32 characters of a-z 0-9 _ -, a letter first)' }),
      ),
  ),
  scope: z.optional(z.enum(["client", "global"], { error: 'must be "client" or "global"' })),
  count: z._default(z.enum(["all", "failed", "successful"], { error: 'must be "all", "failed" or "successful"' }), "all"),
  block: z.optional(blockSchema),
  resetOnSuccess: z._default(z.boolean({ error: "must be true or false" }), false),
});

/** The key a rule counts by: its `key`, or `scope`, the older spelling of `key: "client"` and `key: "global"`. */
function keyOf(rule: { key?: string | undefined; scope?: "client" | "global" | undefined }): string {
  return rule.key ?? rule.scope ?? "client";
}

export const ruleSchema = z.pipe(
  ruleFields.check(
    z.superRefine((rule: z.output<typeof ruleFields>, ctx) => {
      if (rule.burst !== undefined && !hasBurst(rule.algorithm)) {
        ctx.addIssue({ code: "custom", path: ["burst"], message: noBurstProblem(rule.algorithm) });
      }
      const capacity = rule.burst ?? rule.limit;
      if (capacity >= 1 && rule.cost > capacity) {
        const field = rule.burst === undefined ? "limit" : "burst";
        ctx.addIssue({
          code: "custom",
          path: ["cost"],
          message: `must not exceed ${field} (${capacity}): such a request could never be admitted`,
        });
      }
      if (rule.key !== undefined && rule.scope !== undefined && rule.key !== rule.scope) {
        ctx.addIssue({
          code: "custom",
          path: ["scope"],
          message: `is the older spelling of key ("client" or "global"), and says otherwise than key: "${rule.key}"; give key alone`,
        });
      }
      if (rule.count !== "all" && algorithmFor(rule.algorithm).leasing === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["count"],
          message: `needs an algorithm that can hold a charge until the response settles it (${HOLDING_ALGORITHMS.join(", ")}), not ${rule.algorithm}`,
        });
      }
      if (rule.resetOnSuccess && rule.count !== "failed") {
        ctx.addIssue({
          code: "custom",
          path: ["resetOnSuccess"],
          message: 'needs count: "failed": only a rule that waits for the outcome knows a success',
        });
      }
      if (rule.block !== undefined && rule.mode === "shadow") {
        ctx.addIssue({ code: "custom", path: ["block"], message: "is for an enforcing rule: a shadow rule never blocks" });
      }
      if (rule.block !== undefined && keyOf(rule) === "global") {
        ctx.addIssue({
          code: "custom",
          path: ["block"],
          message: "would block every client at once: give it to a rule of the client or of a dimension",
        });
      }
      if (rule.algorithm === "sliding-window-log" && rule.limit > MAX_LOG_LIMIT) {
        ctx.addIssue({
          code: "custom",
          path: ["limit"],
          message: `must be at most ${MAX_LOG_LIMIT} for sliding-window-log, which stores one timestamp per request (use sliding-window-counter)`,
        });
      }
    }),
  ),
  z.transform(
    (rule: z.output<typeof ruleFields>): Rule => ({
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
export const limitsSchema = z.pipe(
  z.strictObject({
    limit: z.optional(countSchema("requests per period")),
    period: z.optional(periodSchema),
    burst: z.optional(countSchema("largest burst")),
  }),
  z.transform(
    ({ limit, period, burst }: { limit?: number | undefined; period?: number | undefined; burst?: number | undefined }): Limits => ({
      limit,
      periodSeconds: period,
      burst,
    }),
  ),
);
