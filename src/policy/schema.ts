import { z } from "zod";
import { DEFAULT_IDENTITY, type IdentityOptions } from "../identity/identify.ts";
import { normalizeIp, parseCidr, subscriberOf } from "../identity/ip.ts";
import { type AlgorithmName, algorithmNames, algorithmsWithBurst } from "../limiter/registry.ts";

// Workers forbid code generation from strings; zod's JIT would probe for it on every schema.
z.config({ jitless: true });

const SECONDS_PER_UNIT = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
const MAX_PERIOD_SECONDS = 7 * 86_400;
/** Keeps token-bucket arithmetic in exact integers: burst × period in ms stays below 2^53. */
const MAX_LIMIT = 1_000_000;

/** Seconds as a whole number, or a duration string such as "10s", "1m", "1h", "1d". */
const PERIOD_FORMAT = 'must be a number of seconds or a duration such as "10s", "1m", "1h", "1d"';
const periodSchema = z
  .unknown()
  .transform((value, ctx) => {
    if (typeof value === "number") return value;
    const match = typeof value === "string" ? /^(\d+)\s*([smhd])$/.exec(value.trim()) : null;
    if (!match) {
      ctx.addIssue({ code: "custom", message: PERIOD_FORMAT });
      return z.NEVER;
    }
    return Number(match[1]) * SECONDS_PER_UNIT[match[2] as keyof typeof SECONDS_PER_UNIT];
  })
  .pipe(
    z
      .number()
      .int({ error: "must be a whole number of seconds" })
      .min(1, { error: "must be at least 1 second" })
      .max(MAX_PERIOD_SECONDS, { error: `must be at most ${MAX_PERIOD_SECONDS} seconds (7 days)` }),
  );

const countSchema = (what: string) =>
  z
    .number({ error: `must be an integer >= 1 (${what})` })
    .int({ error: "must be an integer >= 1" })
    .min(1, { error: "must be an integer >= 1" })
    .max(MAX_LIMIT, { error: `must be at most ${MAX_LIMIT}` });

const MAX_LOG_LIMIT = 10_000;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const matchSchema = z.strictObject({
  methods: z
    .array(
      z
        .string({ error: "must be an HTTP method" })
        .transform((method) => method.toUpperCase())
        .pipe(z.string().regex(/^[A-Z]+$/, { error: "must be an HTTP method such as GET" })),
      { error: "must be a list of HTTP methods" },
    )
    .min(1, { error: "must list at least one method" })
    .optional(),
  path: z
    .string({ error: "must be a path pattern" })
    .regex(/^\/[^\s?#]*$/, { error: 'must start with "/" and contain no spaces, "?" or "#" (use * as a wildcard)' })
    .optional(),
});

const ruleSchema = z
  .strictObject({
    name: z.string({ error: "must be a string" }).regex(NAME, { error: "must be 1-64 characters of A-Z a-z 0-9 _ . -" }),
    match: matchSchema.optional(),
    algorithm: z.enum(algorithmNames, { error: `must be one of: ${algorithmNames.join(", ")}` }).default("token-bucket"),
    limit: countSchema("requests per period"),
    period: periodSchema,
    burst: countSchema("largest burst").optional(),
    cost: countSchema("units charged per request").default(1),
    mode: z.enum(["enforce", "shadow"], { error: 'must be "enforce" or "shadow"' }).default("enforce"),
    onError: z.enum(["allow", "deny"], { error: 'must be "allow" or "deny"' }).default("allow"),
    scope: z.enum(["client", "global"], { error: 'must be "client" or "global"' }).default("client"),
  })
  .superRefine((rule, ctx) => {
    if (rule.burst !== undefined && !algorithmsWithBurst.has(rule.algorithm)) {
      ctx.addIssue({
        code: "custom",
        path: ["burst"],
        message: `${rule.algorithm} has no burst (it allows \`limit\` per window): remove it`,
      });
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
  })
  .transform(
    (rule): Rule => ({
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
  );

/** Limits a tier or an override sets for one rule. */
export const tierLimitsSchema = z
  .strictObject({
    limit: countSchema("requests per period").optional(),
    period: periodSchema.optional(),
    burst: countSchema("largest burst").optional(),
  })
  .transform(({ limit, period, burst }): TierLimits => ({ limit, periodSeconds: period, burst }));

/** Whether `id` is a client id as the limiter makes them: never a raw key. */
export function isClientId(id: string): boolean {
  if (/^key:[0-9a-f]{64}$/.test(id)) return true;
  if (!id.startsWith("ip:")) return false;
  const [address = "", prefix] = id.slice(3).split("/");
  if (prefix === undefined) return normalizeIp(address) === address;
  return /^\d{1,3}$/.test(prefix) && subscriberOf(address, Number(prefix)) === id.slice(3);
}

const headerNameSchema = z
  .string({ error: "must be a header name" })
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: "must be a valid HTTP header name" })
  .transform((name) => name.toLowerCase());

const identitySchema = z
  .strictObject({
    keyHeaders: z.array(headerNameSchema, { error: "must be a list of header names" }).default(DEFAULT_IDENTITY.keyHeaders),
    bearer: z.boolean({ error: "must be true or false" }).default(DEFAULT_IDENTITY.bearer),
    ipFallback: z.boolean({ error: "must be true or false" }).default(DEFAULT_IDENTITY.ipFallback),
    ipv6PrefixLength: z
      .number({ error: "must be a number of bits" })
      .int({ error: "must be a whole number of bits" })
      .min(1, { error: "must be between 1 and 128" })
      .max(128, { error: "must be between 1 and 128" })
      .default(DEFAULT_IDENTITY.ipv6PrefixLength),
    onInvalid: z.enum(["reject", "ip"], { error: 'must be "reject" or "ip"' }).default(DEFAULT_IDENTITY.onInvalid),
  })
  .refine((identity) => identity.keyHeaders.length > 0 || identity.bearer || identity.ipFallback, {
    error: "must leave at least one identity source (keyHeaders, bearer or ipFallback)",
  });

const CLIENT_ID_FORM =
  '"key:" + the SHA-256 hex of the API key (never the raw key), "ip:" + a normalized IPv4 address, or "ip:" + an IPv6 /64 such as "ip:2001:db8:1:2::/64"';

const listEntrySchema = z.string({ error: "must be a string" }).refine((entry) => isClientId(entry) || parseCidr(entry) !== undefined, {
  error: `must be a client id (${CLIENT_ID_FORM}) or an IP range such as "10.0.0.0/8" or "2001:db8::/32"`,
});

const durationSchema = (unit: string, min: number, max: number, fallback: number) =>
  z
    .number({ error: `must be a number of ${unit}` })
    .int({ error: `must be a whole number of ${unit}` })
    .min(min, { error: `must be >= ${min}` })
    .max(max, { error: `must be at most ${max}` })
    .default(fallback);

const policySchema = z
  .strictObject({
    rules: z.array(ruleSchema, { error: "must be a list of rules" }).min(1, { error: "must contain at least one rule" }),
    tiers: z
      .record(
        z.string().regex(NAME, { error: "tier names must be 1-64 characters of A-Z a-z 0-9 _ . -" }),
        z.record(z.string(), tierLimitsSchema),
      )
      .default({}),
    clients: z.record(z.string(), z.string({ error: "must be a tier name" })).default({}),
    allow: z.array(listEntrySchema, { error: "must be a list of client ids or IP ranges" }).default([]),
    deny: z.array(listEntrySchema, { error: "must be a list of client ids or IP ranges" }).default([]),
    identity: identitySchema.default(DEFAULT_IDENTITY),
    legacyHeaders: z.boolean({ error: "must be true or false" }).default(true),
    logDecisions: z.enum(["all", "denied", "none"], { error: 'must be "all", "denied" or "none"' }).default("denied"),
    idleRetentionSeconds: durationSchema("seconds", 0, MAX_PERIOD_SECONDS, 60),
    objectTimeoutMs: durationSchema("milliseconds", 1, 30_000, 1000),
    groupCommitMs: durationSchema("milliseconds", 0, 50, 0),
    reservations: z.boolean({ error: "must be true or false" }).default(true),
  })
  // Cross-field checks run even when some fields are invalid, so that check-config can list every problem at
  // once; they read the input defensively, since an invalid part is not yet in its parsed shape.
  .superRefine(
    (policy, ctx) => {
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
            const tierLimits = limits as TierLimits;
            if (tierLimits.burst !== undefined && !algorithmsWithBurst.has(rule.algorithm)) {
              ctx.addIssue({ code: "custom", path: [...path, "burst"], message: `${rule.algorithm} has no burst: remove it` });
            } else if (rule.cost > applyTier(rule, tierLimits).burst) {
              ctx.addIssue({ code: "custom", path, message: `leaves rule "${ruleName}" a capacity below its cost (${rule.cost})` });
            }
          }
        }
      }
      for (const [clientId, tier] of Object.entries(isRecord(policy.clients) ? policy.clients : {})) {
        if (!isClientId(clientId))
          ctx.addIssue({ code: "custom", path: ["clients", clientId], message: `keys must be client ids: ${CLIENT_ID_FORM}` });
        if (typeof tier === "string" && !(tier in tiers))
          ctx.addIssue({ code: "custom", path: ["clients", clientId], message: `unknown tier "${tier}"` });
      }
    },
    { when: (payload) => isRecord(payload.value) },
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

/** Limits a tier sets for one rule; unset fields keep the rule's. */
export interface TierLimits {
  limit?: number | undefined;
  periodSeconds?: number | undefined;
  burst?: number | undefined;
}

/** Which requests a rule applies to. */
export interface RuleMatch {
  /** Upper-case HTTP methods; all methods when absent. */
  methods?: string[] | undefined;
  /** A path pattern where `*` matches any run of characters, `/` included; all paths when absent. */
  path?: string | undefined;
}

/** One named limit, with its period in seconds and every default applied. */
export interface Rule {
  name: string;
  match?: RuleMatch;
  algorithm: AlgorithmName;
  limit: number;
  periodSeconds: number;
  burst: number;
  cost: number;
  /** "shadow" decides and reports but never blocks. */
  mode: "enforce" | "shadow";
  /** What to do when the rule's Durable Object cannot answer. */
  onError: "allow" | "deny";
  /** "global" shares one budget across all clients. */
  scope: "client" | "global";
}

/** The whole rate-limiting policy. */
export interface Policy {
  rules: Rule[];
  /** Per tier, per rule name: limits that replace the rule's. */
  tiers: Record<string, Record<string, TierLimits>>;
  /** Client id → tier name. */
  clients: Record<string, string>;
  /** Client ids and IP ranges never limited. */
  allow: string[];
  /** Client ids and IP ranges always answered 403. */
  deny: string[];
  /** Where the client's identity comes from. */
  identity: IdentityOptions;
  /** Whether to send X-RateLimit-Limit, -Remaining and -Reset too. */
  legacyHeaders: boolean;
  /**
   * Which decisions get a log line: every one, only those worth acting on (denied,
   * degraded, or denied by a shadow rule), or none. Errors are always logged.
   */
  logDecisions: "all" | "denied" | "none";
  /** How long a client whose buckets are full again is kept before its object is cleaned up. */
  idleRetentionSeconds: number;
  /** How long to wait for a Durable Object's answer before applying the rules' onError. */
  objectTimeoutMs: number;
  /** How long an object gathers admitted decisions before writing them with one row write. */
  groupCommitMs: number;
  /**
   * Whether each write stores units charged in advance, so that later admissions need no write
   * (see `limiter/reservation.ts`); a restart then costs a client at most an eighth of its burst.
   */
  reservations: boolean;
}

/** The rule with a tier's limits applied. A tier that sets `limit` but not `burst` gets burst = its limit. */
export function applyTier(rule: Rule, limits: TierLimits): Rule {
  const limit = limits.limit ?? rule.limit;
  const burst = algorithmsWithBurst.has(rule.algorithm) ? (limits.burst ?? limits.limit ?? rule.burst) : limit;
  return { ...rule, limit, periodSeconds: limits.periodSeconds ?? rule.periodSeconds, burst };
}

/** A policy that failed validation; `problems` lists each one as `path: message`. */
export class PolicyError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid RATE_LIMIT_POLICY: ${problems.join("; ")}`);
    this.problems = problems;
    this.name = "PolicyError";
  }
}

/** `["rules", 0, "limit"]` → `rules[0].limit`. */
export function formatPath(path: readonly PropertyKey[], root = "(policy)"): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else text += text === "" ? String(key) : `.${String(key)}`;
  }
  return text === "" ? root : text;
}

/**
 * Validates a policy given as an object (a TOML table under `[vars]`) or as a JSON
 * string (`--var`, dashboard variables). Throws one PolicyError naming every bad field.
 */
export function parsePolicy(raw: unknown): Policy {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new PolicyError([`(policy): not valid JSON: ${(error as Error).message}`]);
    }
  }
  if (value === undefined || value === null) throw new PolicyError(["(policy): RATE_LIMIT_POLICY is not set"]);
  const result = policySchema.safeParse(value);
  if (!result.success) {
    throw new PolicyError(result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`));
  }
  return result.data;
}

let loadedRaw: unknown;
let loadedFingerprint: string | undefined;
let loaded: Policy | PolicyError | undefined;

/**
 * `parsePolicy` for the Worker's environment: validated once per distinct value per
 * isolate, so a bad policy is logged once and then answered from memory. A TOML
 * table arrives as a JSON binding, which the runtime may hand out as a new object
 * for every request, so a changed identity is compared by content before parsing again.
 */
export function loadPolicy(raw: unknown): Policy {
  if (loaded === undefined || raw !== loadedRaw) {
    const fingerprint = typeof raw === "string" ? raw : JSON.stringify(raw);
    if (loaded === undefined || fingerprint !== loadedFingerprint) {
      loadedFingerprint = fingerprint;
      try {
        loaded = parsePolicy(raw);
      } catch (error) {
        if (!(error instanceof PolicyError)) throw error;
        loaded = error;
        console.error(JSON.stringify({ event: "policy-invalid", problems: error.problems }));
      }
    }
    loadedRaw = raw;
  }
  if (loaded instanceof PolicyError) throw loaded;
  return loaded;
}
