import * as v from "valibot";
import { CLIENT_ID_FORM } from "../identity/client-id.ts";
import { formatPath } from "./format-path.ts";
import { policySchema, RESERVED_NAME_PROBLEM } from "./schema.ts";
import { droppedKeysOf, problemsOf } from "./schema-issues.ts";
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

export { formatPath };

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
  const result = v.safeParse(policySchema, value);
  // A record drops `__proto__`, `prototype` and `constructor` without a word: a tier or a client of such a name is
  // refused like the other reserved names.
  const field = (name: string) =>
    typeof value === "object" && Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
  const problems = [
    ...droppedKeysOf(field("tiers")).map((tier) => `tiers.${tier}: tier names ${RESERVED_NAME_PROBLEM}`),
    ...droppedKeysOf(field("clients")).map((client) => `clients.${client}: keys must be client ids: ${CLIENT_ID_FORM}`),
    ...(result.success ? [] : problemsOf(result.issues, "(policy)")),
  ];
  if (problems.length > 0 || !result.success) throw new PolicyError(problems);
  return result.output;
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
