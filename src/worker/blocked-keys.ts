/** The keys blocked now, as `GET {prefix}/blocks` lists them: the isolates' candidates, each confirmed by its object. */

import type { BlockCandidate } from "../metrics/decision-counters.ts";
import type { DecisionRequest } from "../object/protocol.ts";
import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import type { Policy } from "../policy/types.ts";
import { type NamedObject, objectNamedBy } from "./admin-object-id.ts";

/** A key blocked now, as `GET /blocks` lists it. */
export interface BlockedKey {
  /** The client id, or a dimension's object id (`org:<hash>`). */
  client: string;
  /** The admin path of its object: inspect it, or `DELETE {path}/block` to lift its blocks. */
  path: string;
  /** The dimension whose value's object it is; absent for a client. */
  dimension?: string;
  /** When the last of its blocks ends, epoch ms. */
  untilMs: number;
  /** Until when an operator blocked it, every rule; null when no such block is in force. */
  blockedUntilMs: number | null;
  /** Rule name → when its penalty box's block ends, for each rule blocked now. */
  blockedRules: Record<string, number>;
}

/** What `blockedKeysOf` needs of the admin API. */
export interface BlockedKeysOptions {
  namespace: RateLimiterNamespace;
  policy: Policy;
  /** Where the admin API is mounted, for each key's `path`. */
  prefix: string;
  /** What an object is asked to inspect, as `GET /clients/{id}` asks it. */
  inspectRequestFor: (clientId: string, dimension?: string) => Pick<DecisionRequest, "rules" | "tier">;
}

/**
 * Asks the object of each candidate, all at once, whether it is blocked now, by its clock (it may have been unblocked
 * since an isolate saw it): those that are, latest-ending first, and the ids of those whose objects did not answer. A
 * candidate this API cannot name (a limiter with a prefix names its objects otherwise) is left out.
 */
export async function blockedKeysOf(
  candidates: readonly BlockCandidate[],
  options: BlockedKeysOptions,
): Promise<{ blocks: BlockedKey[]; unreachable: string[] }> {
  const { namespace, policy, prefix, inspectRequestFor } = options;
  const named = candidates.flatMap(({ object }) => {
    const found = objectNamedBy(`id:${object}`, policy);
    return "problem" in found ? [] : [found];
  });
  const states = await Promise.allSettled(
    named.map(({ clientId, dimension }) => namespace.getByName(clientId).inspect(inspectRequestFor(clientId, dimension))),
  );
  const blocks: BlockedKey[] = [];
  const unreachable: string[] = [];
  states.forEach((state, index) => {
    const { clientId, dimension } = named[index] as NamedObject;
    if (state.status === "rejected") {
      unreachable.push(clientId);
      return;
    }
    const { blockedUntilMs, blockedRules } = state.value;
    // An object reports only the blocks in force.
    const untilMs = Math.max(blockedUntilMs ?? 0, ...Object.values(blockedRules));
    if (untilMs === 0) return;
    const path = `${prefix}/clients/${encodeURIComponent(`id:${clientId}`)}`;
    blocks.push({ client: clientId, path, ...(dimension === undefined ? {} : { dimension }), untilMs, blockedUntilMs, blockedRules });
  });
  blocks.sort((a, b) => b.untilMs - a.untilMs || (a.client < b.client ? -1 : 1));
  return { blocks, unreachable };
}
