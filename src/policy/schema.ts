import * as z from "zod/mini";
import { DEFAULT_PATH_MATCHING } from "../http/request-path.ts";
import { CLIENT_ID_FORM, isClientId } from "../identity/client-id.ts";
import { DEFAULT_IDENTITY } from "../identity/identity-options.ts";
import { parseCidr } from "../identity/ip.ts";
import { algorithmNames } from "../limiter/registry.ts";
import { hasBurst, noBurstProblem, withLimits } from "./limits.ts";
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
const MAX_PERIOD_SECONDS = 7 * 86_400;
/** Keeps token-bucket arithmetic in exact integers: burst × period in ms stays below 2^53. */
const MAX_LIMIT = 1_000_000;

/** A whole number between `min` and `max`, each failure told in its own words. */
function wholeNumber(messages: { type: string; whole: string; min: string; max: string }, min: number, max: number) {
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

const MAX_LOG_LIMIT = 10_000;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

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
  scope: z._default(z.enum(["client", "global"], { error: 'must be "client" or "global"' }), "client"),
});

const ruleSchema = z.pipe(
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
      scope: rule.scope,
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

const headerNameSchema = z.pipe(
  z
    .string({ error: "must be a header name" })
    .check(z.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: "must be a valid HTTP header name" })),
  z.transform((name: string) => name.toLowerCase()),
);

const BOOLEAN = { error: "must be true or false" };

const identitySchema = z
  .strictObject({
    keyHeaders: z._default(z.array(headerNameSchema, { error: "must be a list of header names" }), DEFAULT_IDENTITY.keyHeaders),
    bearer: z._default(z.boolean(BOOLEAN), DEFAULT_IDENTITY.bearer),
    ipFallback: z._default(z.boolean(BOOLEAN), DEFAULT_IDENTITY.ipFallback),
    ipv6PrefixLength: z._default(
      wholeNumber(
        {
          type: "must be a number of bits",
          whole: "must be a whole number of bits",
          min: "must be between 1 and 128",
          max: "must be between 1 and 128",
        },
        1,
        128,
      ),
      DEFAULT_IDENTITY.ipv6PrefixLength,
    ),
    onInvalid: z._default(z.enum(["reject", "ip"], { error: 'must be "reject" or "ip"' }), DEFAULT_IDENTITY.onInvalid),
  })
  .check(
    z.refine(
      (identity: { keyHeaders: string[]; bearer: boolean; ipFallback: boolean }) =>
        identity.keyHeaders.length > 0 || identity.bearer || identity.ipFallback,
      { error: "must leave at least one identity source (keyHeaders, bearer or ipFallback)" },
    ),
  );

const listEntrySchema = z.string({ error: "must be a string" }).check(
  z.refine((entry: string) => isClientId(entry) || parseCidr(entry) !== undefined, {
    error: `must be a client id (${CLIENT_ID_FORM}) or an IP range such as "10.0.0.0/8" or "2001:db8::/32"`,
  }),
);

const durationSchema = (unit: string, min: number, max: number, fallback: number) =>
  z._default(
    wholeNumber(
      {
        type: `must be a number of ${unit}`,
        whole: `must be a whole number of ${unit}`,
        min: `must be >= ${min}`,
        max: `must be at most ${max}`,
      },
      min,
      max,
    ),
    fallback,
  );

const LIST = { error: "must be a list of client ids or IP ranges" };

/** A policy as you write it (in code, or as `RATE_LIMIT_POLICY` holds it), before defaults: what `parsePolicy` takes. */
export type PolicyInput = z.input<typeof policySchema>;

/** A policy as the Worker's variables hold it; parsed into a `Policy`. */
export const policySchema = z
  .strictObject({
    rules: z.array(ruleSchema, { error: "must be a list of rules" }).check(z.minLength(1, { error: "must contain at least one rule" })),
    tiers: z._default(
      z.record(
        z.string().check(
          z.regex(NAME, { error: "tier names must be 1-64 characters of A-Z a-z 0-9 _ . -" }),
          z.refine((name: string) => !isReservedName(name), { error: `tier names ${RESERVED_NAME_PROBLEM}` }),
        ),
        z.record(z.string(), limitsSchema),
      ),
      {},
    ),
    clients: z._default(z.record(z.string(), z.string({ error: "must be a tier name" })), {}),
    allow: z._default(z.array(listEntrySchema, LIST), []),
    deny: z._default(z.array(listEntrySchema, LIST), []),
    identity: z._default(identitySchema, DEFAULT_IDENTITY),
    paths: z._default(
      z.strictObject({
        caseSensitive: z._default(z.boolean(BOOLEAN), DEFAULT_PATH_MATCHING.caseSensitive),
        trailingSlash: z._default(
          z.enum(["equivalent", "distinct"], { error: 'must be "equivalent" or "distinct"' }),
          DEFAULT_PATH_MATCHING.trailingSlash,
        ),
        matrixParameters: z._default(
          z.enum(["ignored", "matched"], { error: 'must be "ignored" or "matched"' }),
          DEFAULT_PATH_MATCHING.matrixParameters,
        ),
      }),
      DEFAULT_PATH_MATCHING,
    ),
    legacyHeaders: z._default(z.boolean(BOOLEAN), true),
    logDecisions: z._default(z.enum(["all", "denied", "none"], { error: 'must be "all", "denied" or "none"' }), "denied"),
    idleRetentionSeconds: durationSchema("seconds", 0, MAX_PERIOD_SECONDS, 60),
    objectTimeoutMs: durationSchema("milliseconds", 1, 30_000, 1000),
    groupCommitMs: durationSchema("milliseconds", 0, 50, 0),
    reservations: z._default(z.boolean(BOOLEAN), true),
    leases: z._default(z.boolean(BOOLEAN), true),
    leaseLifetimeMs: durationSchema("milliseconds", 100, 60_000, 1000),
  })
  // Cross-field checks run even when some fields are invalid, so that check-config can list every problem at
  // once; they read the input defensively, since an invalid part is not yet in its parsed shape.
  .check(
    z.superRefine(
      (policy: Record<string, unknown>, ctx) => {
        const rules: unknown[] = Array.isArray(policy.rules) ? policy.rules : [];
        const byName = new Map<string, Partial<Rule>>();
        rules.forEach((rule, index) => {
          if (!isRecord(rule) || typeof rule.name !== "string") return;
          if (byName.has(rule.name))
            ctx.addIssue({ code: "custom", path: ["rules", index, "name"], message: `duplicate rule name "${rule.name}"` });
          byName.set(rule.name, rule as Partial<Rule>);
        });
        const tiers = isRecord(policy.tiers) ? policy.tiers : {};
        for (const [tier, overrides] of Object.entries(tiers)) {
          for (const [ruleName, limits] of Object.entries(isRecord(overrides) ? overrides : {})) {
            const rule = byName.get(ruleName);
            const path = ["tiers", tier, ruleName];
            if (!rule) {
              ctx.addIssue({ code: "custom", path, message: `no rule named "${ruleName}"` });
            } else if (isParsedRule(rule) && isRecord(limits)) {
              const tierLimits = limits as Limits;
              if (tierLimits.burst !== undefined && !hasBurst(rule.algorithm)) {
                ctx.addIssue({ code: "custom", path: [...path, "burst"], message: noBurstProblem(rule.algorithm) });
              } else if (rule.cost > withLimits(rule, tierLimits).burst) {
                ctx.addIssue({ code: "custom", path, message: `leaves rule "${ruleName}" a capacity below its cost (${rule.cost})` });
              }
            }
          }
        }
        for (const [clientId, tier] of Object.entries(isRecord(policy.clients) ? policy.clients : {})) {
          if (!isClientId(clientId))
            ctx.addIssue({ code: "custom", path: ["clients", clientId], message: `keys must be client ids: ${CLIENT_ID_FORM}` });
          if (typeof tier === "string" && !Object.hasOwn(tiers, tier))
            ctx.addIssue({ code: "custom", path: ["clients", clientId], message: `unknown tier "${tier}"` });
        }
      },
      { when: (payload) => isRecord(payload.value) },
    ),
  );

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether a rule made it through its own schema (it then has its period in seconds). */
function isParsedRule(rule: Partial<Rule>): rule is Rule {
  return (
    typeof rule.periodSeconds === "number" &&
    typeof rule.burst === "number" &&
    typeof rule.cost === "number" &&
    typeof rule.algorithm === "string"
  );
}
