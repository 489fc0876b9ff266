import * as v from "valibot";
import { DEFAULT_PATH_MATCHING } from "../http/request-path.ts";
import { CLIENT_ID_FORM, DIMENSION_OBJECT_FORM, dimensionOfObjectId, isClientId } from "../identity/client-id.ts";
import { DEFAULT_IDENTITY } from "../identity/identity-options.ts";
import { parseCidr } from "../identity/ip.ts";
import { BUILT_IN_KEYS, dimensionsSchema } from "./dimension-schema.ts";
import { hasBurst, noBurstProblem, withLimits } from "./limits.ts";
import { isReservedName, limitsSchema, MAX_PERIOD_SECONDS, NAME, RESERVED_NAME_PROBLEM, ruleSchema, wholeNumber } from "./rule-schema.ts";
import { issueAt, strictFields } from "./schema-issues.ts";
import type { Limits, Rule } from "./types.ts";

export { limitsSchema, RESERVED_NAME_PROBLEM } from "./rule-schema.ts";

const headerNameSchema = v.pipe(
  v.string("must be a header name"),
  v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be a valid HTTP header name"),
  v.transform((name: string) => name.toLowerCase()),
);

const BOOLEAN = "must be true or false";

const identitySchema = v.pipe(
  strictFields({
    keyHeaders: v.optional(v.array(headerNameSchema, "must be a list of header names"), DEFAULT_IDENTITY.keyHeaders),
    bearer: v.optional(v.boolean(BOOLEAN), DEFAULT_IDENTITY.bearer),
    ipFallback: v.optional(v.boolean(BOOLEAN), DEFAULT_IDENTITY.ipFallback),
    ipv6PrefixLength: v.optional(
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
    onInvalid: v.optional(v.picklist(["reject", "ip"], 'must be "reject" or "ip"'), DEFAULT_IDENTITY.onInvalid),
  }),
  v.check(
    (identity) => identity.keyHeaders.length > 0 || identity.bearer || identity.ipFallback,
    "must leave at least one identity source (keyHeaders, bearer or ipFallback)",
  ),
);

const listEntrySchema = v.pipe(
  v.string("must be a string"),
  v.check(
    (entry: string) => isClientId(entry) || parseCidr(entry) !== undefined,
    `must be a client id (${CLIENT_ID_FORM}) or an IP range such as "10.0.0.0/8" or "2001:db8::/32"`,
  ),
);

const durationSchema = (unit: string, min: number, max: number, fallback: number) =>
  v.optional(
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

const LIST = "must be a list of client ids or IP ranges";

/** A policy as you write it (in code, or as `RATE_LIMIT_POLICY` holds it), before defaults: what `parsePolicy` takes. */
export type PolicyInput = v.InferInput<typeof policySchema>;

/** A policy as the Worker's variables hold it; parsed into a `Policy`. */
export const policySchema = v.pipe(
  strictFields({
    rules: v.pipe(v.array(ruleSchema, "must be a list of rules"), v.minLength(1, "must contain at least one rule")),
    tiers: v.optional(
      v.record(
        v.pipe(
          v.string(),
          v.regex(NAME, "tier names must be 1-64 characters of A-Z a-z 0-9 _ . -"),
          v.check((name: string) => !isReservedName(name), `tier names ${RESERVED_NAME_PROBLEM}`),
        ),
        v.record(v.string(), limitsSchema),
      ),
      {},
    ),
    clients: v.optional(v.record(v.string(), v.string("must be a tier name")), {}),
    allow: v.optional(v.array(listEntrySchema, LIST), []),
    deny: v.optional(v.array(listEntrySchema, LIST), []),
    identity: v.optional(identitySchema, DEFAULT_IDENTITY),
    dimensions: dimensionsSchema,
    paths: v.optional(
      strictFields({
        caseSensitive: v.optional(v.boolean(BOOLEAN), DEFAULT_PATH_MATCHING.caseSensitive),
        trailingSlash: v.optional(
          v.picklist(["equivalent", "distinct"], 'must be "equivalent" or "distinct"'),
          DEFAULT_PATH_MATCHING.trailingSlash,
        ),
        matrixParameters: v.optional(
          v.picklist(["ignored", "matched"], 'must be "ignored" or "matched"'),
          DEFAULT_PATH_MATCHING.matrixParameters,
        ),
      }),
      DEFAULT_PATH_MATCHING,
    ),
    legacyHeaders: v.optional(v.boolean(BOOLEAN), true),
    logDecisions: v.optional(v.picklist(["all", "denied", "none"], 'must be "all", "denied" or "none"'), "denied"),
    idleRetentionSeconds: durationSchema("seconds", 0, MAX_PERIOD_SECONDS, 60),
    objectTimeoutMs: durationSchema("milliseconds", 1, 30_000, 1000),
    groupCommitMs: durationSchema("milliseconds", 0, 50, 0),
    reservations: v.optional(v.boolean(BOOLEAN), true),
    leases: v.optional(v.boolean(BOOLEAN), true),
    leaseLifetimeMs: durationSchema("milliseconds", 100, 60_000, 1000),
    holdTtlSeconds: durationSchema("seconds", 1, 86_400, 600),
  }),
  // Cross-field checks run even when some fields are invalid, so that check-config can list every problem at
  // once; they read the value defensively, since an invalid part is not yet in its parsed shape.
  v.rawCheck(({ dataset, addIssue }) => {
    const policy: unknown = dataset.value;
    if (!isRecord(policy)) return;
    const problem = (path: [string | number, ...(string | number)[]], message: string) => addIssue(issueAt(policy, path, message));
    const rules: unknown[] = Array.isArray(policy.rules) ? policy.rules : [];
    const byName = new Map<string, Partial<Rule>>();
    rules.forEach((rule, index) => {
      if (!isRecord(rule) || typeof rule.name !== "string") return;
      if (byName.has(rule.name)) problem(["rules", index, "name"], `duplicate rule name "${rule.name}"`);
      byName.set(rule.name, rule as Partial<Rule>);
    });
    const dimensions = isRecord(policy.dimensions) ? policy.dimensions : {};
    rules.forEach((rule, index) => {
      const key = isRecord(rule) ? rule.key : undefined;
      if (typeof key !== "string" || (BUILT_IN_KEYS as readonly string[]).includes(key) || Object.hasOwn(dimensions, key)) return;
      problem(
        ["rules", index, "key"],
        `no dimension named "${key}": declare it under dimensions with where its value comes from (caller, header, query or path)`,
      );
    });
    const tiers = isRecord(policy.tiers) ? policy.tiers : {};
    for (const [tier, overrides] of Object.entries(tiers)) {
      for (const [ruleName, limits] of Object.entries(isRecord(overrides) ? overrides : {})) {
        const rule = byName.get(ruleName);
        const path: [string, string, string] = ["tiers", tier, ruleName];
        if (!rule) {
          problem(path, `no rule named "${ruleName}"`);
        } else if (isParsedRule(rule) && isRecord(limits)) {
          const tierLimits = limits as Limits;
          if (tierLimits.burst !== undefined && !hasBurst(rule.algorithm)) {
            problem([...path, "burst"], noBurstProblem(rule.algorithm));
          } else if (rule.cost > withLimits(rule, tierLimits).burst) {
            problem(path, `leaves rule "${ruleName}" a capacity below its cost (${rule.cost})`);
          }
        }
      }
    }
    for (const [clientId, tier] of Object.entries(isRecord(policy.clients) ? policy.clients : {})) {
      // A dimension's object has a tier as a client has: `org:<hash>`, as logs name it.
      const ofDimension = dimensionOfObjectId(clientId, isRecord(policy.dimensions) ? policy.dimensions : {}) !== undefined;
      if (!isClientId(clientId) && !ofDimension)
        problem(["clients", clientId], `keys must be client ids (${CLIENT_ID_FORM}) or a dimension's object (${DIMENSION_OBJECT_FORM})`);
      if (typeof tier === "string" && !Object.hasOwn(tiers, tier)) problem(["clients", clientId], `unknown tier "${tier}"`);
    }
  }),
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
