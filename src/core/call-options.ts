/** What one call of the limiter says, checked: its key, its cost and tier, and a settlement; each error names its option. */

import { credentialProblem } from "../identity/identify.ts";
import type { KeyHasher } from "../identity/secret.ts";
import type { HoldSettlement } from "../object/protocol.ts";
import { isCallCost, MAX_CALL_COST } from "../policy/limits.ts";
import type { LimitOptions, SettleOptions } from "./create-limiter.ts";

/**
 * The client id of a key if it is hashed already, else undefined; a key that could not name a client of its own
 * throws a TypeError naming it.
 */
export function knownClientIdOf(key: unknown, keys: KeyHasher): string | undefined {
  if (typeof key !== "string") throw new TypeError(`limit(): key must be a string (got ${key === null ? "null" : typeof key})`);
  const problem = credentialProblem("key", key);
  if (problem) throw new TypeError(`limit(): ${problem}`);
  return keys.known(key);
}

/** The client id of a key, hashed; a key that could not name a client of its own is a TypeError naming it. */
export async function clientIdOf(key: unknown, keys: KeyHasher): Promise<string> {
  return knownClientIdOf(key, keys) ?? keys.clientId(key as string);
}

/** A settlement's options checked, each error naming its option. */
export function settlementOf({ successful = true, cost }: SettleOptions): HoldSettlement {
  if (typeof successful !== "boolean") throw new TypeError(`settle(): successful must be true or false (got ${typeof successful})`);
  if (cost === undefined) return { successful };
  if (cost === "refund") return { successful, cost: 0 };
  if (!(Number.isSafeInteger(cost) && cost >= 0 && cost <= MAX_CALL_COST))
    throw new TypeError(`settle(): cost must be "refund" or a whole number from 0 to ${MAX_CALL_COST} (got ${String(cost)})`);
  return { successful, cost };
}

/** A call's cost and tier checked, each error naming its option. */
export function checkCall(call: Pick<LimitOptions, "cost" | "tier" | "hold">, tiers: Record<string, unknown>): void {
  const { cost, tier } = call;
  if (call.hold !== undefined && typeof call.hold !== "boolean") throw new TypeError("limit(): hold must be true or false");
  if (cost !== undefined && !isCallCost(cost)) {
    throw new TypeError(`limit(): cost must be a whole number from 1 to ${MAX_CALL_COST} (got ${String(cost)})`);
  }
  if (tier !== undefined && !(typeof tier === "string" && Object.hasOwn(tiers, tier))) {
    const known = Object.keys(tiers);
    throw new TypeError(`limit(): tier must be one of the policy's tiers${known.length > 0 ? `: ${known.join(", ")}` : " (it has none)"}`);
  }
}
