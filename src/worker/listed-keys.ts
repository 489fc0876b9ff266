/**
 * What the limiter holds, as the admin API lists it: the keys blocked now (`GET {prefix}/blocks`) and those holding
 * leases or charges awaiting settlement (`GET {prefix}/holdings`). The isolates' candidates, each confirmed by its
 * own object.
 */

import type { KeyEnd } from "../metrics/decision-counters.ts";
import type { ClientReport, DecisionRequest } from "../object/protocol.ts";
import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import { GLOBAL_OBJECT } from "../object-client/object-name.ts";
import type { Policy } from "../policy/types.ts";
import { type NamedObject, objectNamedBy } from "./admin-object-id.ts";

/** A key as the lists name it. */
export interface ListedKey {
  /** The client id, a dimension's object id (`org:<hash>`), or `global`. */
  client: string;
  /** The admin path of its object, to inspect it or act on it; absent for the global object, which it cannot name. */
  path?: string;
  /** The dimension whose value's object it is (`global` for the global object); absent for a client. */
  dimension?: string;
  /** When what it is listed for ends, epoch ms: its last block, or as far as an isolate knew, its lease or hold. */
  untilMs: number;
}

/** A key blocked now, as `GET /blocks` lists it. */
export interface BlockedKey extends ListedKey {
  path: string;
  /** Until when an operator blocked it, every rule; null when no such block is in force. */
  blockedUntilMs: number | null;
  /** Rule name → when its penalty box's block ends, for each rule blocked now. */
  blockedRules: Record<string, number>;
}

/** A key whose object has units leased to isolates, or held by admissions awaiting settlement. */
export interface HoldingKey extends ListedKey {
  /** Rule name → units leased (or held) now, for each rule with any. */
  rules: Record<string, number>;
}

/** What the lists need of the admin API. */
export interface ListedKeysOptions {
  namespace: RateLimiterNamespace;
  policy: Policy;
  /** Where the admin API is mounted, for each key's `path`. */
  prefix: string;
  /** What an object is asked to inspect, as `GET /clients/{id}` asks it (`global`'s rules for the global object). */
  inspectRequestFor: (clientId: string, dimension?: string) => Pick<DecisionRequest, "rules" | "tier">;
}

/** A list's keys that their objects confirmed, latest-ending first, and the ids of those whose objects did not answer. */
export interface ListedKeys<T extends ListedKey> {
  keys: T[];
  unreachable: string[];
}

/**
 * Asks the object of each candidate, all at once, what `confirm` finds in its report now, by its clock (an isolate
 * saw it earlier): those it confirms, latest-ending first. A candidate this API cannot name (a limiter with a prefix
 * names its objects otherwise) is left out.
 */
async function confirmedKeysOf<T extends ListedKey>(
  candidates: readonly KeyEnd[],
  options: ListedKeysOptions,
  confirm: (report: ClientReport, listed: ListedKey) => T | undefined,
): Promise<ListedKeys<T>> {
  const { namespace, policy, prefix, inspectRequestFor } = options;
  const named = candidates.flatMap(({ object, untilMs }) => {
    if (object === GLOBAL_OBJECT) return [{ clientId: GLOBAL_OBJECT, dimension: "global", untilMs, global: true }];
    const found = objectNamedBy(`id:${object}`, policy);
    return "problem" in found ? [] : [{ ...found, untilMs, global: false }];
  });
  const states = await Promise.allSettled(
    named.map(({ clientId, dimension }) => namespace.getByName(clientId).inspect(inspectRequestFor(clientId, dimension))),
  );
  const keys: T[] = [];
  const unreachable: string[] = [];
  states.forEach((state, index) => {
    const { clientId, dimension, untilMs, global } = named[index] as NamedObject & { untilMs: number; global: boolean };
    if (state.status === "rejected") {
      unreachable.push(clientId);
      return;
    }
    const listed: ListedKey = {
      client: clientId,
      ...(global ? {} : { path: `${prefix}/clients/${encodeURIComponent(`id:${clientId}`)}` }),
      ...(dimension === undefined ? {} : { dimension }),
      untilMs,
    };
    const confirmed = confirm(state.value, listed);
    if (confirmed) keys.push(confirmed);
  });
  keys.sort((a, b) => b.untilMs - a.untilMs || (a.client < b.client ? -1 : 1));
  return { keys, unreachable };
}

/** The keys blocked now: an object reports only the blocks in force, each with its end. */
export function blockedKeysOf(candidates: readonly KeyEnd[], options: ListedKeysOptions): Promise<ListedKeys<BlockedKey>> {
  return confirmedKeysOf(candidates, options, ({ blockedUntilMs, blockedRules }, listed) => {
    const untilMs = Math.max(blockedUntilMs ?? 0, ...Object.values(blockedRules));
    if (untilMs === 0 || listed.path === undefined) return undefined;
    return { ...listed, path: listed.path, untilMs, blockedUntilMs, blockedRules };
  });
}

/** The keys whose objects report units leased (`leased`) or held awaiting settlement (`held`) now. */
export function holdingKeysOf(
  candidates: readonly KeyEnd[],
  options: ListedKeysOptions,
  units: "leased" | "held",
): Promise<ListedKeys<HoldingKey>> {
  return confirmedKeysOf(candidates, options, (report, listed) => {
    const rules: Record<string, number> = {};
    for (const rule of report.rules) if (rule[units] > 0) rules[rule.name] = rule[units];
    return Object.keys(rules).length === 0 ? undefined : { ...listed, rules };
  });
}
