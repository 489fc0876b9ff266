import * as z from "zod/mini";
import { DEFAULT_PATH_MATCHING } from "../http/request-path.ts";
import { CLIENT_ID_FORM, isClientId } from "../identity/client-id.ts";
import { DEFAULT_IDENTITY } from "../identity/identity-options.ts";
import { parseCidr } from "../identity/ip.ts";
import { BUILT_IN_KEYS, dimensionsSchema } from "./dimension-schema.ts";
import { hasBurst, noBurstProblem, withLimits } from "./limits.ts";
import { isReservedName, limitsSchema, MAX_PERIOD_SECONDS, NAME, RESERVED_NAME_PROBLEM, ruleSchema, wholeNumber } from "./rule-schema.ts";
import type { Limits, Rule } from "./types.ts";

export { limitsSchema, RESERVED_NAME_PROBLEM } from "./rule-schema.ts";

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
    dimensions: dimensionsSchema,
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
    holdTtlSeconds: durationSchema("seconds", 1, 86_400, 600),
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
        const dimensions = isRecord(policy.dimensions) ? policy.dimensions : {};
        rules.forEach((rule, index) => {
          const key = isRecord(rule) ? rule.key : undefined;
          if (typeof key !== "string" || (BUILT_IN_KEYS as readonly string[]).includes(key) || Object.hasOwn(dimensions, key)) return;
          ctx.addIssue({
            code: "custom",
            path: ["rules", index, "key"],
            message: `no dimension named "${key}": declare it under dimensions with where its value comes from (caller, header, query or path)`,
          });
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
