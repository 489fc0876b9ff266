import { matchingForm } from "../http/request-path.ts";
import { algorithmFor } from "../limiter/registry.ts";
import { leasableRequests } from "../object/lease-ledger.ts";
import type { DecisionRequest, ObjectRule } from "../object/protocol.ts";
import { isListed, parseAccessList } from "./access-list.ts";
import { withLimits } from "./limits.ts";
import { loadPolicy, PolicyError } from "./load.ts";
import { type RouteMatcher, routeMatcher } from "./route-pattern.ts";
import type { Limits, Policy, Rule } from "./types.ts";

/**
 * The rules that apply to a request, with what is worked out once per set of rules: the
 * cache key of its denials and what each object is asked. The same set is the same object.
 */
export interface RuleSet {
  rules: readonly Rule[];
  /**
   * Each rule's definition (`ruleDefinition`), one per line: with the object's name, the key of a cached denial, so
   * that a denial under some limits never answers a request under others of the same names.
   */
  key: string;
  /**
   * The rules by the object that counts them, in the order they are decided (docs/architecture.md, invariant 2): the
   * client's own first, then each dimension's in the policy's order, then the global one's. None when no rule applies.
   */
  parts: readonly RuleSetPart[];
  /** The dimensions the parts count by (not "client" or "global"), whose values a request must give. */
  dimensions: readonly string[];
  /**
   * Whether an admission is held until its response settles it (docs/configuration.md, Holds): when a rule has a
   * `count`, or the app settles costs (`held`). Its parts' requests then ask for a hold and are never provisional or
   * leased.
   */
  holds: boolean;
}

/** The rules of a rule set that one object decides. */
export interface RuleSetPart {
  /** Whose object: "client", "global", or a dimension's name. */
  key: string;
  rules: readonly Rule[];
  /**
   * What the object is asked, for a client without a tier: provisional when another object may still deny the
   * request. Tiers and overrides apply in the client's object and each dimension's, not in the global one.
   */
  request: DecisionRequest;
  /**
   * Names these rules, each by its definition (cost included), in an isolate's leases (see
   * `object-client/lease-table.ts`), so that a lease charged at one cost or under some limits is never spent at
   * another. Undefined when they are not leased: the policy turns leases off, or one of them cannot lease (a
   * sliding window or a shadow rule keeps the whole set unleased, and so does a rule too slow to lease; see
   * `object/lease-ledger.ts`).
   */
  leaseKey: string | undefined;
  /**
   * Each of these rules' definitions (`ruleDefinition`), one per line: what names them in an isolate's memory of a
   * shared object's denials (see `object-client/part-denials.ts`), which keeps the tier apart itself.
   */
  definitions: string;
}

/** A validated policy with everything per-request code needs from it, built once per policy value. */
export interface CompiledPolicy {
  policy: Policy;
  /** Every client rule as its object receives it: what the admin API asks an object to describe. */
  clientObjectRules: readonly ObjectRule[];
  /** The rules of a dimension (`org`) as its values' objects receive them: what the admin API asks one to describe. */
  dimensionObjectRules(dimension: string): readonly ObjectRule[];
  /** Every rule as its objects receive it (global rules too), by name: what two limiters in one isolate compare. */
  objectRules: ReadonlyMap<string, ObjectRule>;
  /**
   * The rules that apply to an identified client's request: none for an allow-listed client, "deny-listed"
   * for a client the policy answers 403. The address is read only when a list has IP ranges.
   */
  ruleSetFor(clientId: string, headers: Headers, method: string, path: string): RuleSet | "deny-listed";
  /**
   * The rules a call names, or by default those without a `match` (the ones no request has to fit), under the
   * policy's lists as `ruleSetFor` applies them (`ip`, the caller's address, for their ranges).
   */
  ruleSetNamed(clientId: string, ip: string | null, rules: readonly Rule[] | undefined): RuleSet | "deny-listed";
  /** The same rule set charging `cost` units a request to each rule rather than each rule's own cost. */
  withCost(ruleSet: RuleSet, cost: number): RuleSet;
  /**
   * The same rule set for a request under a tier its caller names (`limit(key, { tier })`, the middleware's `tier`
   * option), or that it names for a dimension's value (`keys: { org: { key, tier } }`, with `part` the dimension): its
   * denials and that part's leases are kept apart from the same rules' under another tier, since a client's (or an
   * org's) tier may change from one call to the next.
   */
  withTier(ruleSet: RuleSet, tier: string, part?: string): RuleSet;
  /** The same rule set with its admissions held until the app settles them (`settle`), as a rule's `count` holds them. */
  held(ruleSet: RuleSet): RuleSet;
  /** The same rule set without the rules that count by these dimensions: those a request gave no value for. */
  without(ruleSet: RuleSet, dimensions: readonly string[]): RuleSet;
  /**
   * The rule set a request's dimension values leave it (see `dimensionIdsOf`): without the rules of the dimensions it
   * had no value for, and under the tier it named for each of the others' values (`withTier`).
   */
  forDimensions(ruleSet: RuleSet, found: { skipped: readonly string[]; tiers: Readonly<Record<string, string>> }): RuleSet;
  /** Whether the allow list exempts a client from every rule (`ip`, its address, for the list's ranges). */
  isAllowListed(clientId: string, ip: string | null): boolean;
  /** How many rule sets it keeps: at most 256 besides every rule and none. */
  readonly ruleSetCount: number;
}

/** At most this many rule sets other than "every rule" are kept per policy; requests matching others build theirs anew. */
const MAX_RULE_SETS = 256;

const compiled = new WeakMap<Policy, CompiledPolicy>();

/**
 * The compiled policy of the Worker's `RATE_LIMIT_POLICY`, or the PolicyError that says what to fix
 * (validated once per value per isolate: see `loadPolicy`).
 */
export function loadCompiledPolicy(raw: unknown): CompiledPolicy | PolicyError {
  try {
    return compilePolicy(loadPolicy(raw));
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
}

/** The policy compiled, once per policy object (`loadPolicy` returns one object per value). */
export function compilePolicy(policy: Policy): CompiledPolicy {
  let ready = compiled.get(policy);
  if (!ready) {
    ready = compile(policy);
    compiled.set(policy, ready);
  }
  return ready;
}

function compile(policy: Policy): CompiledPolicy {
  const allow = parseAccessList(policy.allow);
  const deny = parseAccessList(policy.deny);
  const listsAddresses = allow.ranges.length > 0 || deny.ranges.length > 0;
  const matchers: RouteMatcher[] = policy.rules.map((rule) => routeMatcher(rule.match, policy.paths));
  const rulesAlwaysApply = policy.rules.every((rule) => rule.match === undefined);
  const objectRules = new Map(policy.rules.map((rule) => [rule, objectRuleOf(rule, policy)]));
  const objectRuleFor = (rule: Rule) => objectRules.get(rule) ?? objectRuleOf(rule, policy);
  const ruleSetOf = (rules: readonly Rule[], hold = false) => buildRuleSet(rules, objectRuleFor, policy, hold);
  const allRules = ruleSetOf(policy.rules);
  const noRules = ruleSetOf([]);
  const unmatchedRules = ruleSetOf(policy.rules.filter((rule) => rule.match === undefined));
  const ruleSets = new Map<string, RuleSet>();
  /** Rule sets by their rules' names, and by names and cost for those charged at another cost: at most 256 each. */
  const namedSets = new Map<string, RuleSet>();
  const costedSets = new Map<string, RuleSet>();
  const tieredSets = new Map<string, RuleSet>();
  const reducedSets = new Map<string, RuleSet>();
  const heldSets = new Map<string, RuleSet>();

  function cached(cache: Map<string, RuleSet>, key: string, build: () => RuleSet): RuleSet {
    let set = cache.get(key);
    if (!set) {
      set = build();
      if (cache.size < MAX_RULE_SETS) cache.set(key, set);
    }
    return set;
  }

  const matchesPaths = policy.rules.some((rule) => rule.match?.path !== undefined);

  /**
   * The rules that apply to a request: all of them (and the request unread) when no rule has a `match`. Paths are
   * compared in their matching form (`matchingForm`), folded only when some rule has a path to compare.
   */
  function matchingRules(method: string, path: string): RuleSet {
    if (rulesAlwaysApply) return allRules;
    const folded = matchesPaths ? matchingForm(path, policy.paths) : path;
    const rules = policy.rules.filter((_, index) => (matchers[index] as RouteMatcher)(method, folded));
    if (rules.length === policy.rules.length) return allRules;
    return cached(ruleSets, rules.map((rule) => rule.name).join("\n"), () => ruleSetOf(rules));
  }

  /** Whether the lists keep a client from its rules: "deny-listed", none (allow-listed), or undefined for neither. */
  function listed(clientId: string, ip: string | null): RuleSet | "deny-listed" | undefined {
    if (isListed(deny, clientId, ip)) return "deny-listed";
    return isListed(allow, clientId, ip) ? noRules : undefined;
  }

  /** See `CompiledPolicy.withTier`. */
  function withTier(ruleSet: RuleSet, tier: string, tiered = "client"): RuleSet {
    const label = tiered === "client" ? `tier ${tier}` : `${tiered} tier ${tier}`;
    return cached(tieredSets, `${ruleSet.key}\n${label}`, () => ({
      ...ruleSet,
      key: `${ruleSet.key}\n${label}`,
      parts: ruleSet.parts.map((part) =>
        part.key !== tiered || part.leaseKey === undefined ? part : { ...part, leaseKey: `${part.leaseKey}\n${label}` },
      ),
    }));
  }

  /** See `CompiledPolicy.without`. */
  function without(ruleSet: RuleSet, dimensions: readonly string[]): RuleSet {
    const rules = ruleSet.rules.filter((rule) => !dimensions.includes(rule.key));
    return cached(reducedSets, `${ruleSet.key}\nwithout ${dimensions.join(" ")}`, () => ruleSetOf(rules, ruleSet.holds));
  }

  return {
    policy,
    clientObjectRules: policy.rules.filter((rule) => rule.scope === "client").map((rule) => objectRules.get(rule) as ObjectRule),
    objectRules: new Map(policy.rules.map((rule) => [rule.name, objectRules.get(rule) as ObjectRule])),
    dimensionObjectRules(dimension) {
      return policy.rules.filter((rule) => rule.key === dimension).map(objectRuleFor);
    },
    get ruleSetCount() {
      return ruleSets.size;
    },
    ruleSetFor(clientId, headers, method, path) {
      return listed(clientId, listsAddresses ? headers.get("cf-connecting-ip") : null) ?? matchingRules(method, path);
    },
    ruleSetNamed(clientId, ip, rules) {
      const onList = listed(clientId, ip);
      if (onList !== undefined) return onList;
      if (rules === undefined) return unmatchedRules;
      return cached(namedSets, rules.map((rule) => rule.name).join("\n"), () => ruleSetOf(rules));
    },
    withTier,
    held(ruleSet) {
      return ruleSet.holds ? ruleSet : cached(heldSets, ruleSet.key, () => ruleSetOf(ruleSet.rules, true));
    },
    without,
    forDimensions(ruleSet, { skipped, tiers }) {
      let counted = skipped.length === 0 ? ruleSet : without(ruleSet, skipped);
      for (const dimension in tiers) counted = withTier(counted, tiers[dimension] as string, dimension);
      return counted;
    },
    isAllowListed(clientId, ip) {
      return isListed(allow, clientId, ip);
    },
    withCost(ruleSet, cost) {
      if (ruleSet.rules.every((rule) => rule.cost === cost)) return ruleSet;
      const names = ruleSet.rules.map((rule) => rule.name).join("\n");
      return cached(costedSets, `${names}\n${cost}`, () => ruleSetOf(ruleSet.rules.map((rule) => ({ ...rule, cost }))));
    },
  };
}

/**
 * What a rule is, as its object counts it: name, algorithm, limits, cost, mode, scope and the limits each tier sets
 * for it, in one line. Two rules with the same definition count the same way in the same bucket.
 */
export function ruleDefinition(rule: ObjectRule): string {
  const { name, algorithm, limit, periodSeconds, burst, cost, mode, scope, tiers } = rule;
  return JSON.stringify([name, algorithm, limit, periodSeconds, burst, cost, mode, scope, tiers ?? null]);
}

/**
 * A rule as its object receives it: no `match`, and for a client's or a dimension's rule the limits each tier sets for
 * it (the org's tier sets the org's rules).
 */
function objectRuleOf(rule: Rule, policy: Policy): ObjectRule {
  const { match: _match, key: _key, ...rest } = rule;
  if (rule.key === "global") return rest;
  const tiers: Record<string, Limits> = {};
  for (const [tier, limits] of Object.entries(policy.tiers)) {
    const ruleLimits = limits[rule.name];
    if (ruleLimits) tiers[tier] = ruleLimits;
  }
  return Object.keys(tiers).length > 0 ? { ...rest, tiers } : rest;
}

/** The order objects decide in: the client's, each dimension's as the policy lists them, the global one. */
function keysInOrder(rules: readonly Rule[], policy: Policy): string[] {
  const dimensions = ["ip", ...Object.keys(policy.dimensions)].filter((key) => rules.some((rule) => rule.key === key));
  return [
    ...(rules.some((rule) => rule.key === "client") ? ["client"] : []),
    ...dimensions,
    ...(rules.some((rule) => rule.key === "global") ? ["global"] : []),
  ];
}

function buildRuleSet(rules: readonly Rule[], objectRuleFor: (rule: Rule) => ObjectRule, policy: Policy, hold: boolean): RuleSet {
  const keys = keysInOrder(rules, policy);
  const holds = hold || rules.some((rule) => rule.count !== undefined);
  // The client's part is decided first, and the others together once it admits (see `decideRequest`): a charge is
  // provisional whenever another part decided with or after it may deny the request. A held charge is undone by
  // settling its hold instead.
  const othersAfterClient = keys.filter((key) => key !== "client").length;
  const isProvisional = (key: string) => !holds && (key === "client" ? keys.length > 1 : othersAfterClient > 1);
  const requestFor = (scoped: readonly Rule[], provisional: boolean): DecisionRequest => ({
    rules: scoped.map(objectRuleFor),
    idleRetentionSeconds: policy.idleRetentionSeconds,
    groupCommitMs: policy.groupCommitMs,
    ...(policy.reservations ? {} : { reservations: false }),
    ...(provisional ? { provisional } : {}),
    ...(holds ? { hold: { ttlMs: policy.holdTtlSeconds * 1000 } } : {}),
  });
  const definitionsOf = (scoped: readonly Rule[]) => scoped.map((rule) => ruleDefinition(objectRuleFor(rule))).join("\n");
  // A held admission needs its object, which keeps the hold: an isolate's lease cannot hold it.
  const leaseKeyOf = (scoped: readonly Rule[]) =>
    !holds && policy.leases && scoped.length > 0 && scoped.every((rule) => canLease(objectRuleFor(rule), policy.leaseLifetimeMs))
      ? definitionsOf(scoped)
      : undefined;
  return {
    rules,
    key: definitionsOf(rules),
    parts: keys.map((key): RuleSetPart => {
      const scoped = rules.filter((rule) => rule.key === key);
      const request = requestFor(scoped, isProvisional(key));
      return { key, rules: scoped, request, leaseKey: leaseKeyOf(scoped), definitions: definitionsOf(scoped) };
    }),
    dimensions: keys.filter((key) => key !== "client" && key !== "global"),
    holds,
  };
}

/**
 * The first rule of a rule set that cannot hold a charge until a response settles it (a sliding window, whose
 * bound counts each admission at its own time), or undefined: `hold` and the middleware's `settle` need every rule
 * to hold.
 */
export function unholdableRule(ruleSet: RuleSet): Rule | undefined {
  return ruleSet.rules.find((rule) => algorithmFor(rule.algorithm).leasing === undefined);
}

/**
 * Whether an object may lease a rule's requests: an enforcing rule of an algorithm that leases, which refills at
 * least two requests a lease lifetime under its own limits or a tier's (`leasableRequests`). An override that
 * makes a slow rule fast is known only to its object; its client is then served without leases.
 */
function canLease(rule: ObjectRule, leaseLifetimeMs: number): boolean {
  if (rule.mode !== "enforce" || algorithmFor(rule.algorithm).leasing === undefined) return false;
  const limits = [rule, ...Object.values(rule.tiers ?? {}).map((tierLimits) => withLimits(rule, tierLimits))];
  return limits.some((each) => leasableRequests(each, { cost: rule.cost, lifetimeMs: leaseLifetimeMs }) >= 2);
}
