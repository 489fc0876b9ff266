/** A request's dimensions: the values of the keys, besides the client, that its rules count by (the policy's `dimensions`). */

import { IP_DIMENSION } from "../policy/dimension-schema.ts";
import type { Dimension, Policy } from "../policy/types.ts";
import { allOf, andThen, type MaybePromise } from "../runtime/maybe-promise.ts";
import { ipClientId } from "./client-id.ts";
import { credentialProblem } from "./identify.ts";
import type { KeyHasher } from "./secret.ts";

/** What a request gives its dimensions' sources to read. */
export interface DimensionInput {
  /** The request's headers: `from: "header"`, and `CF-Connecting-IP` for `ip`. */
  headers?: Headers | undefined;
  /** The request's URL: `from: "query"`. */
  url?: string | undefined;
  /** The routed path: `from: "path"`. */
  path?: string | undefined;
  /** What the app said: `from: "caller"` (`limit(key, { keys })`, the middleware's `keys` option). */
  caller?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Each dimension's object id (`org:<hash of its value>`, or `ip:<address>` for `ip`), and the dimensions the
 * request gave no value for whose rules are skipped; or why the request cannot be decided, naming the dimension.
 */
export type DimensionIds = { ids: Record<string, string>; skipped: string[] } | { problem: string };

/** Where a dimension's value is read, for messages: `header x-org-id`, `keys.org`. */
function sourceName(name: string, dimension: Dimension): string {
  const { source } = dimension;
  switch (source.from) {
    case "caller":
      return `keys.${name}`;
    case "header":
      return `header ${source.name}`;
    case "query":
      return `query parameter ${source.name}`;
    case "path":
      return `path segment ${source.segment}`;
    default:
      return "CF-Connecting-IP";
  }
}

/** The value a request gives a dimension, or undefined when it gives none. */
function dimensionValue(name: string, dimension: Dimension, input: DimensionInput): unknown {
  const { source } = dimension;
  switch (source.from) {
    case "caller":
      return input.caller?.[name];
    case "header":
      return input.headers?.get(source.name) ?? undefined;
    case "query":
      return input.url === undefined ? undefined : (new URL(input.url).searchParams.get(source.name) ?? undefined);
    case "path":
      return input.path?.split("/")[source.segment + 1];
    default:
      return input.headers?.get("cf-connecting-ip") ?? undefined;
  }
}

/**
 * The object ids of `dimensions` for a request: each value hashed as API keys are (under the key secret, if any), so
 * that an email or an org id is never an object name or a log field. Answered in this turn when every value is hashed
 * already. A value that is not a string, or one a key could not be (empty, too long, control characters), is a problem
 * naming the dimension; a missing one too, unless the dimension says `whenMissing: "skip"`.
 */
export function dimensionIdsOf(
  dimensions: readonly string[],
  policy: Pick<Policy, "dimensions" | "identity">,
  input: DimensionInput,
  keys: KeyHasher,
): MaybePromise<DimensionIds> {
  const skipped: string[] = [];
  const pending: Array<MaybePromise<[string, string]>> = [];
  for (const name of dimensions) {
    const dimension = name === "ip" ? IP_DIMENSION : policy.dimensions[name];
    if (dimension === undefined) return { problem: `the policy has no dimension "${name}"` };
    const where = `the "${name}" dimension (${sourceName(name, dimension)})`;
    const value = dimensionValue(name, dimension, input);
    if (value === undefined || value === "") {
      if (dimension.whenMissing === "skip") {
        skipped.push(name);
        continue;
      }
      return { problem: `${where} has no value, and its rules need one` };
    }
    if (typeof value !== "string") return { problem: `${where} must be a string (got ${value === null ? "null" : typeof value})` };
    if (name === "ip") {
      const id = ipClientId(value, policy.identity.ipv6PrefixLength);
      if (id === undefined) return { problem: `${where} is not an IP address` };
      pending.push([name, id]);
      continue;
    }
    const problem = credentialProblem(where, value);
    if (problem) return { problem };
    const hashed = keys.known(value) ?? keys.clientId(value);
    pending.push(andThen(hashed, (clientId): [string, string] => [name, `${name}:${clientId.slice("key:".length)}`]));
  }
  return andThen(allOf(pending), (entries) => ({ ids: Object.fromEntries(entries), skipped }));
}

/** The key of a cached denial of a rule set with dimensions: its rules and the objects they were counted in. */
export function dimensionedKey(ruleSetKey: string, ids: Readonly<Record<string, string>>): string {
  let key = ruleSetKey;
  for (const name in ids) key += `\n${ids[name]}`;
  return key;
}
