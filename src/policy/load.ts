import type * as z from "zod/mini";
import { policySchema, RESERVED_NAME_PROBLEM } from "./schema.ts";
import type { Policy } from "./types.ts";

/**
 * A policy that failed validation; `problems` lists each one as `path: message`.
 * @example
 * if (error instanceof PolicyError) console.error(error.problems.join("\n"));
 */
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
 * @example
 * try { parsePolicy({ rules: [{ name: "api", limit: 0, period: "1m" }] }) } catch (error) { error.problems } // ["rules[0].limit: must be an integer >= 1"]
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
  // zod drops a `__proto__` key without a word; a tier of that name is refused like the other reserved names.
  const tiers = typeof value === "object" && "tiers" in value ? value.tiers : undefined;
  const protoTier = typeof tiers === "object" && tiers !== null && Object.hasOwn(tiers, "__proto__");
  const problems = [
    ...(protoTier ? [`tiers.__proto__: tier names ${RESERVED_NAME_PROBLEM}`] : []),
    ...(result.success ? [] : result.error.issues.map((issue) => `${formatPath(issue.path)}: ${messageOf(issue)}`)),
  ];
  if (problems.length > 0 || !result.success) throw new PolicyError(problems);
  return result.data;
}

/** An issue's message; for a record key refused (a tier's name), what its own checks said rather than zod's summary. */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_key" && issue.issues.length > 0) return issue.issues.map((inner) => inner.message).join("; ");
  return issue.message;
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
