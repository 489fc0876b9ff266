/** A request's dimensions: the values of the keys, besides the client, that its rules count by (the policy's `dimensions`). */

import { IP_DIMENSION } from "../policy/dimension-schema.ts";
import type { Dimension, Policy } from "../policy/types.ts";
import { allOf, andThen, type MaybePromise } from "../runtime/maybe-promise.ts";
import { type BodyFields, REPEATED_FIELD } from "./body-fields.ts";
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
  /**
   * What the app said: `from: "caller"` (`limit(key, { keys })`, the middleware's `keys` option), each value a string
   * or `{ key, tier }` (`CallerKey`).
   */
  caller?: Readonly<Record<string, unknown>> | undefined;
  /** Reads the request's body's fields, for `from: "body"`: called once, and only when a dimension needs them. */
  body?: (() => Promise<BodyFields>) | undefined;
}

/**
 * A caller dimension's value as the app gives it with the tier its rules are counted under, as a client's tier sets a
 * client's rules (the org's plan sets the org's rules): `keys: { org: { key: org.id, tier: org.plan } }`.
 */
export interface CallerKey {
  key: string;
  /** One of the policy's `tiers`. @default the policy's `clients` entry for the dimension's object; an override wins */
  tier?: string | undefined;
}

/**
 * Each dimension's object id (`org:<hash of its value>`, or `ip:<address>` for `ip`), the tier the caller named for a
 * dimension (`CallerKey`), and the dimensions the request gave no value for whose rules are skipped; or why the
 * request cannot be decided, naming the dimension (a 413 when it is the body that is too large to read).
 */
export type DimensionIds =
  | { ids: Record<string, string>; tiers: Record<string, string>; skipped: string[] }
  | { problem: string; status?: 413 };

/**
 * A dimension's value for a request: the string to hash (with the tier the caller named), or where the value was
 * missing, or what is wrong with it.
 */
type DimensionValue = { value: string; tier?: string | undefined } | { missing: { name: string; where: string } } | { problem: string };

/** Everything a request's dimensions are read from, its body's fields read already. */
interface ReadableInput extends DimensionInput {
  fields: ReadonlyMap<string, unknown>;
}

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
    case "body":
      return `body field ${source.field}`;
    case "combined":
      return source.of.join(" and ");
    default:
      return "CF-Connecting-IP";
  }
}

/** The value a request gives a dimension's source, or undefined when it gives none. */
function sourceValue(name: string, dimension: Dimension, input: ReadableInput): unknown {
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
    case "body":
      return input.fields.get(source.field);
    default:
      return input.headers?.get("cf-connecting-ip") ?? undefined;
  }
}

/** What of the policy a request's dimensions are read under. */
type DimensionPolicy = Pick<Policy, "dimensions" | "identity" | "tiers">;

function dimensionOf(name: string, policy: Pick<Policy, "dimensions">): Dimension | undefined {
  return name === "ip" ? IP_DIMENSION : Object.hasOwn(policy.dimensions, name) ? policy.dimensions[name] : undefined;
}

/** A dimension's value, checked as a key is; a combined dimension's is its parts' values, each checked, together. */
function dimensionValueOf(name: string, dimension: Dimension, input: ReadableInput, policy: DimensionPolicy): DimensionValue {
  const { source } = dimension;
  const where = `the "${name}" dimension (${sourceName(name, dimension)})`;
  if (source.from === "combined") {
    const parts: string[] = [];
    for (const part of source.of) {
      const partDimension = dimensionOf(part, policy);
      if (partDimension === undefined) return { problem: `the policy has no dimension "${part}"` };
      const value = dimensionValueOf(part, partDimension, input, policy);
      if (!("value" in value)) return value;
      // A part's tier is the part's own: it does not set the rules of the pair.
      parts.push(value.value);
    }
    // Each part is checked free of control characters, so a newline cannot be in one: two pairs never join alike.
    return { value: parts.join("\n") };
  }
  const given = sourceValue(name, dimension, input);
  if (source.from === "caller" && isCallerKey(given)) {
    const { key, tier } = given;
    if (tier !== undefined && !(typeof tier === "string" && Object.hasOwn(policy.tiers, tier))) {
      const known = Object.keys(policy.tiers);
      return {
        problem: `keys.${name}.tier must be one of the policy's tiers${known.length > 0 ? `: ${known.join(", ")}` : " (it has none)"}`,
      };
    }
    const value = checkedValue(name, dimension, key, `the "${name}" dimension (keys.${name}.key)`, policy);
    return "value" in value && tier !== undefined ? { ...value, tier } : value;
  }
  return checkedValue(name, dimension, given, where, policy);
}

/** Whether a caller's value is given with its tier (`CallerKey`): an object, not null. */
function isCallerKey(value: unknown): value is { key: unknown; tier?: unknown } {
  return typeof value === "object" && value !== null;
}

/** A value read for a dimension, checked as a key is: a string, none, or what is wrong with it. */
function checkedValue(name: string, dimension: Dimension, value: unknown, where: string, policy: DimensionPolicy): DimensionValue {
  if (value === undefined || value === "") return { missing: { name, where } };
  if (value === REPEATED_FIELD) return { problem: `${where} is given more than once` };
  if (typeof value !== "string") return { problem: `${where} must be a string (got ${value === null ? "null" : typeof value})` };
  if (dimension.source.from === "ip") {
    const id = ipClientId(value, policy.identity.ipv6PrefixLength);
    return id === undefined ? { problem: `${where} is not an IP address` } : { value: id };
  }
  const problem = credentialProblem(where, value);
  if (problem) return { problem };
  return { value: dimension.lowercase ? value.toLowerCase() : value };
}

/** Whether any of `dimensions`, or a part of one, is read from the body. */
function readsBody(dimensions: readonly string[], policy: Pick<Policy, "dimensions">): boolean {
  return dimensions.some((name) => {
    const source = dimensionOf(name, policy)?.source;
    return source?.from === "body" || (source?.from === "combined" && readsBody(source.of, policy));
  });
}

/**
 * The object ids of `dimensions` for a request: each value hashed as API keys are (under the key secret, if any), so
 * that an email or an org id is never an object name or a log field. Answered in this turn when every value is hashed
 * already and none is read from the body. A value that is not a string, or one a key could not be (empty, too long,
 * control characters), is a problem naming the dimension; a missing one too, unless the dimension says
 * `whenMissing: "skip"`.
 */
export function dimensionIdsOf(
  dimensions: readonly string[],
  policy: DimensionPolicy,
  input: DimensionInput,
  keys: KeyHasher,
): MaybePromise<DimensionIds> {
  if (!readsBody(dimensions, policy)) return idsOf(dimensions, policy, { ...input, fields: NO_FIELDS }, keys);
  return (input.body?.() ?? Promise.resolve({ fields: NO_FIELDS })).then((body) =>
    "problem" in body ? body : idsOf(dimensions, policy, { ...input, fields: body.fields }, keys),
  );
}

const NO_FIELDS: ReadonlyMap<string, unknown> = new Map();

function idsOf(dimensions: readonly string[], policy: DimensionPolicy, input: ReadableInput, keys: KeyHasher): MaybePromise<DimensionIds> {
  const skipped: string[] = [];
  const tiers: Record<string, string> = {};
  const pending: Array<MaybePromise<[string, string]>> = [];
  for (const name of dimensions) {
    const dimension = dimensionOf(name, policy);
    if (dimension === undefined) return { problem: `the policy has no dimension "${name}"` };
    const found = dimensionValueOf(name, dimension, input, policy);
    if ("problem" in found) return found;
    if ("missing" in found) {
      if (dimension.whenMissing === "skip") {
        skipped.push(name);
        continue;
      }
      const whose = found.missing.name === name ? "its rules need one" : `the rules of "${name}" need one`;
      return { problem: `${found.missing.where} has no value, and ${whose}` };
    }
    if (found.tier !== undefined) tiers[name] = found.tier;
    if (name === "ip") {
      pending.push([name, found.value]);
      continue;
    }
    const hashed = keys.known(found.value) ?? keys.clientId(found.value);
    pending.push(andThen(hashed, (clientId): [string, string] => [name, `${name}:${clientId.slice("key:".length)}`]));
  }
  return andThen(allOf(pending), (entries) => ({ ids: Object.fromEntries(entries), tiers, skipped }));
}

/** The key of a cached denial of a rule set with dimensions: its rules and the objects they were counted in. */
export function dimensionedKey(ruleSetKey: string, ids: Readonly<Record<string, string>>): string {
  let key = ruleSetKey;
  for (const name in ids) key += `\n${ids[name]}`;
  return key;
}
