import { z } from "zod";
import { type AlgorithmName, algorithmNames } from "./limiter/registry.ts";

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

const ruleSchema = z
  .strictObject({
    name: z
      .string({ error: "must be a string" })
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "must be 1-64 characters of A-Z a-z 0-9 _ . -" }),
    algorithm: z.enum(algorithmNames, { error: `must be one of: ${algorithmNames.join(", ")}` }).default("token-bucket"),
    limit: countSchema("requests per period"),
    period: periodSchema,
    burst: countSchema("largest burst").optional(),
    cost: countSchema("units charged per request").default(1),
  })
  .transform((rule) => ({
    name: rule.name,
    algorithm: rule.algorithm,
    limit: rule.limit,
    periodSeconds: rule.period,
    burst: rule.burst ?? rule.limit,
    cost: rule.cost,
  }))
  .superRefine((rule, ctx) => {
    if (rule.cost > rule.burst) {
      ctx.addIssue({
        code: "custom",
        path: ["cost"],
        message: `must not exceed burst (${rule.burst}): such a request could never be admitted`,
      });
    }
  });

const policySchema = z
  .strictObject({
    rules: z.array(ruleSchema, { error: "must be a list of rules" }).min(1, { error: "must contain at least one rule" }),
    idleRetentionSeconds: z
      .number({ error: "must be a number of seconds" })
      .int({ error: "must be a whole number of seconds" })
      .min(0, { error: "must be >= 0" })
      .max(MAX_PERIOD_SECONDS, { error: `must be at most ${MAX_PERIOD_SECONDS}` })
      .default(60),
  })
  .superRefine((policy, ctx) => {
    const seen = new Set<string>();
    policy.rules.forEach((rule, index) => {
      if (seen.has(rule.name))
        ctx.addIssue({ code: "custom", path: ["rules", index, "name"], message: `duplicate rule name "${rule.name}"` });
      seen.add(rule.name);
    });
  });

/** One named limit, with its period in seconds and every default applied. */
export interface Rule {
  name: string;
  algorithm: AlgorithmName;
  limit: number;
  periodSeconds: number;
  burst: number;
  cost: number;
}

/** The whole rate-limiting policy. */
export interface Policy {
  rules: Rule[];
  /** How long a client whose buckets are full again is kept before its object is cleaned up. */
  idleRetentionSeconds: number;
}

/** A policy that failed validation; `problems` lists each one as `path: message`. */
export class PolicyError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid RATE_LIMIT_POLICY: ${problems.join("; ")}`);
    this.name = "PolicyError";
  }
}

/** `["rules", 0, "limit"]` → `rules[0].limit`. */
function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else text += text === "" ? String(key) : `.${String(key)}`;
  }
  return text === "" ? "(policy)" : text;
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
