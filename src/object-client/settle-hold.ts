/** Settling a held admission in every object that holds a part of it, once its response is known. */

import type { HoldSettlement } from "../object/protocol.ts";
import { callObject, type RateLimiterNamespace } from "./call-object.ts";

/** One object's hold of a request's charges: the object's name and the hold's id there. */
export interface HoldPart {
  object: string;
  holdId: string;
}

/**
 * The settlement that refunds every rule of a hold, whatever its `count`: a request another object denied. Not a
 * success, so that it starts no `resetOnSuccess` rule afresh: a denied request forgives no failures.
 */
export const REFUND_ALL: HoldSettlement = Object.freeze({ successful: false, cost: 0 });

const HOLD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A request's holds as one opaque string (`Decision.hold`): object names have no spaces or commas. */
export function holdTokenOf(parts: readonly HoldPart[]): string {
  return parts.map(({ object, holdId }) => `${object} ${holdId}`).join(",");
}

/** The holds a token names, or undefined when it is not one `holdTokenOf` made. */
export function holdPartsOf(token: unknown): HoldPart[] | undefined {
  if (typeof token !== "string" || token.length === 0 || token.length > 4096) return undefined;
  const parts: HoldPart[] = [];
  for (const part of token.split(",")) {
    const [object, holdId, extra] = part.split(" ");
    if (!object || holdId === undefined || extra !== undefined || !HOLD_ID.test(holdId)) return undefined;
    parts.push({ object, holdId });
  }
  return parts;
}

/**
 * Settles each object's hold of a request, all at once. A hold that cannot be settled (its object unreachable, or
 * the hold expired) stands as charged, which can only under-admit; each is logged. Resolves with whether every hold
 * was settled.
 */
export async function settleHolds(
  namespace: RateLimiterNamespace,
  parts: readonly HoldPart[],
  settlement: HoldSettlement,
  objectTimeoutMs: number,
): Promise<boolean> {
  const settled = await Promise.all(
    parts.map(async ({ object, holdId }) => {
      try {
        const done = await callObject(namespace, object, objectTimeoutMs, (stub) => stub.settle(holdId, settlement));
        if (!done) console.error(JSON.stringify({ event: "hold-settle-refused", object, holdId }));
        return done;
      } catch (error) {
        console.error(JSON.stringify({ event: "hold-settle-failed", object, holdId, error: String(error) }));
        return false;
      }
    }),
  );
  return settled.every(Boolean);
}
