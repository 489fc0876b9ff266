/** The parts' answers to one request, put together into its decision: what the Worker and the app see of it. */

import type { Decision, ObjectDecision } from "../object/protocol.ts";
import type { ObjectAnswer } from "./ask-object.ts";
import { holdTokenOf } from "./settle-hold.ts";

/** A part's answer, and the object that gave it. */
export interface Answer extends ObjectAnswer {
  object: string;
}

/**
 * The decision of a request every part decided (or every part up to the one that denied it), with the holds of an
 * admission held in its objects.
 */
export function combined(answers: readonly Answer[]): Decision {
  if (answers.length === 1) return decisionOf(answers[0] as Answer);
  const allowed = answers.every(({ decision }) => decision.allowed);
  const held = allowed ? answers.filter(({ decision }) => decision.holdId !== undefined) : [];
  const hold =
    held.length === 0 ? undefined : holdTokenOf(held.map(({ object, decision }) => ({ object, holdId: decision.holdId as string })));
  const rules = answers.flatMap(({ decision }) => decision.rules);
  const degraded = answers.some(({ decision }) => decision.degraded);
  const leased = answers.every(({ decision }) => decision.leased);
  const refundsPending = !allowed && answers.some(({ decision }) => decision.refundsPending);
  return {
    allowed,
    rules,
    ...(degraded ? { degraded: true } : {}),
    ...(leased ? { leased } : {}),
    ...(hold === undefined ? {} : { hold }),
    ...(refundsPending ? { refundsPending } : {}),
  };
}

/** The decision of a request one object decided, with its hold when it holds the admission; no array on the hot key. */
export function decisionOf({ object, decision: answered }: Answer): Decision {
  const decision = asDecision(answered);
  if (answered.holdId === undefined || !answered.allowed) return decision;
  return { ...decision, hold: holdTokenOf([{ object, holdId: answered.holdId }]) };
}

/**
 * The decision without the object's charge id, lease and hold id, which are the Worker's business only; as it is
 * when it has none.
 */
function asDecision(result: ObjectDecision): Decision {
  if (result.chargeId === undefined && result.lease === undefined && result.holdId === undefined) return result;
  const { chargeId: _, lease: __, holdId: ___, ...decision } = result;
  return decision;
}
