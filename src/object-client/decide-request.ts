import type { DecisionCounters } from "../metrics/decision-counters.ts";
import type { Decision, DecisionRequest } from "../object/protocol.ts";
import type { RuleSet, RuleSetPart } from "../policy/compiled-policy.ts";
import type { Policy } from "../policy/types.ts";
import type { Clock } from "../runtime/clock.ts";
import { allOf, andThen, type MaybePromise } from "../runtime/maybe-promise.ts";
import { askObject, clockOf, linksOf } from "./ask-object.ts";
import { callObject, type RateLimiterNamespace } from "./call-object.ts";
import { cacheableWaitMs } from "./denial-wait.ts";
import { GLOBAL_OBJECT, objectNameOf } from "./object-name.ts";
import { type Answer, combined, decisionOf } from "./part-answers.ts";
import { REFUND_ALL, settleHolds } from "./settle-hold.ts";

/** Everything needed to decide one request. */
export interface DecideOptions {
  namespace: RateLimiterNamespace;
  /** The limiter's prefix: its objects are named `<prefix>/<name>` (see `objectNameOf`). */
  prefix?: string | undefined;
  clientId: string;
  /** The client's tier, when the caller says it. @default the policy's `clients` entry for the client */
  tier?: string | undefined;
  /** The rules that apply to this request. */
  ruleSet: RuleSet;
  policy: Pick<Policy, "objectTimeoutMs" | "clients" | "leaseLifetimeMs" | "holdTtlSeconds">;
  /** The request's `waitUntil`, to let a call that carries other requests' decisions finish if this client goes away. */
  waitUntil?: ((promise: Promise<unknown>) => void) | undefined;
  /** The isolate's clock, which times its leases. @default systemClock */
  clock?: Clock | undefined;
  /**
   * Each dimension the rule set counts by, as the id of the object of the request's value (`dimensionIdsOf`): for
   * `org` with `o_9`, `org:<its hash>`.
   */
  dimensionIds?: Readonly<Record<string, string>> | undefined;
  /**
   * The tier of a dimension's object, when the caller names it (`keys: { org: { key, tier } }`).
   * @default the policy's `clients` entry for the object's id
   */
  dimensionTiers?: Readonly<Record<string, string>> | undefined;
  /** Where the latency of object calls, and the keys found blocked, leasing or holding, are counted; none, they are not. */
  counters?: DecisionCounters | undefined;
  /** Whether shared objects' denials are remembered and answered from this isolate's memory (`PartDenials`). @default true */
  cacheDenials?: boolean | undefined;
}

const ADMITTED_BY_NONE: Decision = { allowed: true, rules: [] };

/**
 * Decides a request in every object its rules live in (the rule set's parts), charging it in all of them or in none
 * (docs/architecture.md, invariant 2). One part goes first (`leadOf`), in its object or from a lease that object
 * granted this isolate: a shared object's that denied lately, else the client's own, so that a request the likeliest
 * part denies costs the others nothing. Only if it admits are the other parts decided, all at once: each dimension's
 * object and the global one count budgets of their own and wait on nothing from each other. If any part denies, every
 * part that admitted is undone exactly (a lease's request unspent, an object's provisional charge refunded; see
 * RefundJournal). Answered in the same turn, without a promise, when leases cover every part.
 */
export function decideRequest(options: DecideOptions): MaybePromise<Decision> {
  const { parts } = options.ruleSet;
  const first = parts[0];
  if (first === undefined) return ADMITTED_BY_NONE;
  // The hot key's rule set: the client's own rules alone, nothing shared to look up (bench/README.md, "The hot key").
  if (parts.length === 1 && first.key === "client") return andThen(decidePart(options, first), decisionOf);
  const askedAtMs = clockOf(options).nowMs();
  const denied = sharedDenialOf(options, parts, askedAtMs);
  if (denied) return denied;
  const lead = leadOf(options, parts, askedAtMs);
  if (lead === undefined) return decideTogether(options, undefined, parts, askedAtMs);
  // Past the hot key's case, a lead always has other parts after it.
  return andThen(decidePart(options, lead, true), (led) => {
    if (led.decision.allowed)
      return decideTogether(
        options,
        { part: lead, answer: led },
        parts.filter((part) => part !== lead),
        askedAtMs,
      );
    rememberSharedDenials(options, [lead], [led], askedAtMs);
    return decisionOf(led);
  });
}

/**
 * The part decided alone before the others: a shared object's that denied lately (`PartDenials.isContended`), which
 * is likeliest to deny again and then costs the others nothing; else the client's own. Undefined when neither.
 */
function leadOf(options: DecideOptions, parts: readonly RuleSetPart[], nowMs: number): RuleSetPart | undefined {
  const client = parts[0]?.key === "client" ? parts[0] : undefined;
  if (parts.length < 2) return client;
  const { partDenials } = linksOf(options.namespace);
  // A client that denied lately is likelier still to deny than any shared part: it keeps going first.
  if (client && partDenials.isContended(objectOf(options, "client"), nowMs)) return client;
  for (const part of parts) if (part.key !== "client" && partDenials.isContended(objectOf(options, part.key), nowMs)) return part;
  return client;
}

/**
 * A denial this isolate remembers of an object the request shares with other clients (its org's, the global one),
 * which denies the whole request before any part is charged (see `PartDenials`).
 */
function sharedDenialOf(options: DecideOptions, parts: readonly RuleSetPart[], nowMs: number): Decision | undefined {
  if (options.cacheDenials === false) return undefined;
  const { partDenials } = linksOf(options.namespace);
  for (const part of parts) {
    if (part.key === "client") continue;
    const denied = partDenials.get(objectOf(options, part.key), part.definitions, tierOf(options, part.key), nowMs);
    if (denied) return denied;
  }
  return undefined;
}

/**
 * `parts` decided at once, after the one `led` (when one went first); the request's decision once every one has
 * answered, its verdicts in the rule set's order. Asked at `askedAtMs`: a shared object's denial is remembered from
 * then, before it was made, so never for too long.
 */
function decideTogether(
  options: DecideOptions,
  led: { part: RuleSetPart; answer: Answer } | undefined,
  parts: readonly RuleSetPart[],
  askedAtMs: number,
): MaybePromise<Decision> {
  return andThen(allOf(parts.map((part) => decidePart(options, part))), (answers) => {
    const all = led === undefined ? answers : answers.toSpliced(options.ruleSet.parts.indexOf(led.part), 0, led.answer);
    const decision = combined(all);
    settleLeaseSpends(options, all, !decision.allowed);
    if (decision.allowed) {
      confirmAdmitted(options, all);
      return decision;
    }
    rememberSharedDenials(options, parts, answers, askedAtMs);
    return undoAdmitted(options, all).then(() => decision);
  });
}

/**
 * Notes each part that denied as contended (`leadOf`), and remembers each shared object's denial that holds for as
 * long as its wait (`cacheableWaitMs`), for every client. A client's own denial is the middleware's to remember.
 */
function rememberSharedDenials(options: DecideOptions, parts: readonly RuleSetPart[], answers: readonly Answer[], askedAtMs: number): void {
  const { partDenials } = linksOf(options.namespace);
  parts.forEach((part, index) => {
    const { object, decision } = answers[index] as Answer;
    if (decision.allowed) return;
    partDenials.noteDenial(object, askedAtMs);
    if (part.key === "client") return;
    const waitMs = options.cacheDenials === false ? 0 : cacheableWaitMs(decision);
    if (waitMs <= 0) return;
    const remembered: Decision = { allowed: false, rules: decision.rules, cached: true };
    partDenials.set(object, part.definitions, tierOf(options, part.key), remembered, askedAtMs, waitMs);
  });
}

/**
 * Queues the confirmation of every provisional charge of a request admitted at every part, to go with this isolate's
 * next call to each object (see `Confirmations`): only now can no part deny it, so only now are they final.
 */
function confirmAdmitted(options: DecideOptions, answers: readonly Answer[]): void {
  const { confirmations } = linksOf(options.namespace);
  for (const { object, decision } of answers) if (decision.chargeId !== undefined) confirmations.add(object, decision.chargeId);
}

/**
 * Undoes every object's admission of a request another part denied (a lease's spends are undone by
 * `settleLeaseSpends`): exact, since nobody saw the request admitted. A held
 * admission is undone by settling its hold as refunded, which is exact however long it has been held.
 */
async function undoAdmitted(options: DecideOptions, answers: readonly Answer[]): Promise<void> {
  await Promise.all(
    answers.map(async ({ object, decision }) => {
      if (!decision.allowed) return;
      if (decision.chargeId !== undefined) await refundCharge(options, object, decision.chargeId);
      if (decision.holdId !== undefined) {
        await settleHolds(options.namespace, [{ object, holdId: decision.holdId }], REFUND_ALL, options.policy.objectTimeoutMs);
      }
    }),
  );
}

/**
 * Settles each spend from a lease the request's parts made (`LeaseTable.holdSpend`): undone, when another part denied
 * it; the leases may then go back to their objects.
 */
function settleLeaseSpends(options: DecideOptions, answers: readonly Answer[], undone: boolean): void {
  // A part alone is decided as it is spent: no spend of it waits (see `decidePart`).
  if (options.ruleSet.parts.length < 2) return;
  const { leases } = linksOf(options.namespace);
  for (const { fromLease } of answers) if (fromLease) leases.settleSpend(fromLease, undone);
}

/**
 * One object's part of a decision: from this isolate's lease of the part's rules (when they may be leased) in the
 * same turn if it covers the request, else from the object.
 */
function decidePart(options: DecideOptions, part: RuleSetPart, leading = false): MaybePromise<Answer> {
  const object = objectOf(options, part.key);
  const { leaseKey } = part;
  const { leases } = linksOf(options.namespace);
  // Spent while other parts decide: a give-back waits for the spend to be kept or undone (`settleLeaseSpends`).
  const shared = options.ruleSet.parts.length > 1;
  const spent = leaseKey === undefined ? undefined : leases.arrive(object, leaseKey, clockOf(options).nowMs());
  if (spent) {
    if (shared) leases.holdSpend(spent.lease);
    return { object, decision: spent.decision, fromLease: spent.lease };
  }
  const asked = part.key === "global" ? part.request : tieredRequestOf(options, part);
  // A shared part decided before the client's may be denied by it, and must then be refunded.
  const request = leading && part.key !== "client" && !asked.provisional && !asked.hold ? { ...asked, provisional: true } : asked;
  // A spend the batcher answers from the lease is held where it is made (see `linksOf`).
  return andThen(askObject(options, part.key, object, part.rules, request, leaseKey), (answer) => {
    const { counters } = options;
    if (counters && !answer.decision.allowed) recordBlocks(counters, object, answer.decision, clockOf(options).nowMs());
    else if (counters && answer.decision.holdId !== undefined) {
      // Until its ttl at most: a hold settled sooner is no longer held, which the admin API's list asks its object.
      counters.recordEnd("holds", object, clockOf(options).nowMs() + options.policy.holdTtlSeconds * 1000);
    }
    return { object, ...answer };
  });
}

/** Tells the counters of the object's key when a denial says it is blocked: the admin API lists blocked keys from them. */
function recordBlocks(counters: DecisionCounters, object: string, decision: Decision, nowMs: number): void {
  let untilMs = 0;
  for (const verdict of decision.rules) if (verdict.blocked) untilMs = Math.max(untilMs, nowMs + verdict.retryAfterMs);
  if (untilMs > 0) counters.recordEnd("blocks", object, untilMs);
}

/** The object of a part: the client's, the global one, or the one of the request's value of a dimension. */
function objectOf(options: DecideOptions, key: string): string {
  if (key === "client") return objectNameOf(options.prefix, options.clientId);
  if (key === "global") return objectNameOf(options.prefix, GLOBAL_OBJECT);
  const id = options.dimensionIds?.[key];
  // Callers resolve every dimension a rule set counts by first (see `dimensionIdsOf`); one without a value is a bug.
  if (id === undefined) throw new Error(`decideRequest: no value for the dimension "${key}"`);
  return objectNameOf(options.prefix, id);
}

/**
 * What the client's object, or a dimension's, is asked: the part's request, with the tier of the client (or of the
 * dimension's value) when it has one: the caller's, else the policy's `clients` entry for the object's id.
 */
function tieredRequestOf(options: DecideOptions, { key, request }: RuleSetPart): DecisionRequest {
  const tier = tierOf(options, key);
  return tier === undefined ? request : { ...request, tier };
}

/** The tier a part's object is asked under: none for the global one (see `tieredRequestOf`). */
function tierOf(options: DecideOptions, key: string): string | undefined {
  if (key === "global") return undefined;
  const { clients } = options.policy;
  return key === "client"
    ? (options.tier ?? clients[options.clientId])
    : (options.dimensionTiers?.[key] ?? clients[options.dimensionIds?.[key] as string]);
}

async function refundCharge(options: DecideOptions, object: string, chargeId: string): Promise<void> {
  const clientId = objectNameOf(options.prefix, options.clientId);
  try {
    const refunded = await callObject(options.namespace, object, options.policy.objectTimeoutMs, (stub) => stub.refund(chargeId));
    if (!refunded) console.error(JSON.stringify({ event: "refund-refused", object, clientId }));
  } catch (error) {
    // The charge stays: that object's budget loses that much, which can only under-admit.
    console.error(JSON.stringify({ event: "refund-failed", object, clientId, error: String(error) }));
  }
}
