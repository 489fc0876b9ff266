import { policySchema } from "./schema.ts";
import type { Policy } from "./types.ts";

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
