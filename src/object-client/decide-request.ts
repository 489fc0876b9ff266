import type { DecisionCounters } from "../metrics/decision-counters.ts";
import type { Decision, DecisionRequest, ObjectDecision } from "../object/protocol.ts";
import type { RuleSet, RuleSetPart } from "../policy/compiled-policy.ts";
import type { Policy, Rule } from "../policy/types.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { allOf, andThen, type MaybePromise } from "../runtime/maybe-promise.ts";
import { CallBatcher } from "./call-batcher.ts";
import { callObject, type RateLimiterNamespace } from "./call-object.ts";
import { degradedVerdicts, isAdmitted } from "./degraded-verdicts.ts";
import { type HeldLease, LeaseTable } from "./lease-table.ts";
import { GLOBAL_OBJECT, objectNameOf } from "./object-name.ts";

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
  policy: Pick<Policy, "objectTimeoutMs" | "clients" | "leaseLifetimeMs">;
  /** The request's `waitUntil`, to let a call that carries other requests' decisions finish if this client goes away. */
  waitUntil?: ((promise: Promise<unknown>) => void) | undefined;
  /** The isolate's clock, which times its leases. @default systemClock */
  clock?: Clock | undefined;
  /**
   * Each dimension the rule set counts by, as the id of the object of the request's value (`dimensionIdsOf`): for
   * `org` with `o_9`, `org:<its hash>`.
   */
  dimensionIds?: Readonly<Record<string, string>> | undefined;
  /** Where the latency of object calls is counted; none, it is not. */
  counters?: DecisionCounters | undefined;
}

/** A request for one object's call, with the key of its rule set's leases in this isolate when it may be leased. */
interface ObjectCall {
  request: DecisionRequest;
  leaseKey: string | undefined;
  clock: Clock;
}

/** One object's decision on a request, and the lease it was admitted from when the isolate answered it. */
interface ObjectAnswer {
  decision: ObjectDecision;
  fromLease?: HeldLease;
}

/** A part's answer, and the object that gave it. */
interface Answer extends ObjectAnswer {
  object: string;
}

const ADMITTED_BY_NONE: Decision = { allowed: true, rules: [] };

/**
 * Decides a request in every object its rules live in (the rule set's parts), charging it in all of them or in none
 * (docs/architecture.md, invariant 2). The client's own part goes first, in its object or from a lease that object
 * granted this isolate: a client past its own limit then costs the objects it shares with others nothing. Only if it
 * admits are the other parts decided, all at once: each dimension's object and the global one count budgets of their
 * own and wait on nothing from each other. If any part denies, every part that admitted is undone exactly (a lease's
 * request unspent, an object's provisional charge refunded; see RefundJournal). Answered in the same turn, without a
 * promise, when leases cover every part.
 */
export function decideRequest(options: DecideOptions): MaybePromise<Decision> {
  const { parts } = options.ruleSet;
  const first = parts[0];
  if (first === undefined) return ADMITTED_BY_NONE;
  if (first.key !== "client") return decideTogether(options, [], parts);
  return andThen(decidePart(options, first), (client) =>
    client.decision.allowed && parts.length > 1 ? decideTogether(options, [client], parts.slice(1)) : asDecision(client.decision),
  );
}

/** `parts` decided at once, after those already `decided`; the request's decision once every one has answered. */
function decideTogether(options: DecideOptions, decided: Answer[], parts: readonly RuleSetPart[]): MaybePromise<Decision> {
  return andThen(allOf(parts.map((part) => decidePart(options, part))), (answers) => {
    const all = decided.length === 0 ? answers : [...decided, ...answers];
    const decision = combined(all);
    return decision.allowed ? decision : undoAdmitted(options, all).then(() => decision);
  });
}

/** Undoes every admission of a request another part denied: exact, since nobody saw the request admitted. */
async function undoAdmitted(options: DecideOptions, answers: readonly Answer[]): Promise<void> {
  const { leases } = linksOf(options.namespace);
  await Promise.all(
    answers.map(async ({ object, decision, fromLease }) => {
      if (!decision.allowed) return;
      if (fromLease) leases.unspend(fromLease);
      if (decision.chargeId !== undefined) await refundCharge(options, object, decision.chargeId);
    }),
  );
}

/**
 * One object's part of a decision: from this isolate's lease of the part's rules (when they may be leased) in the
 * same turn if it covers the request, else from the object.
 */
function decidePart(options: DecideOptions, part: RuleSetPart): MaybePromise<Answer> {
  const object = objectOf(options, part.key);
  const { leaseKey } = part;
  const spent = leaseKey === undefined ? undefined : linksOf(options.namespace).leases.arrive(object, leaseKey, clockOf(options).nowMs());
  if (spent) return { object, decision: spent.decision, fromLease: spent.lease };
  const request = part.key === "client" ? clientRequestOf(options, part.request) : part.request;
  return andThen(askObject(options, part.key, object, part.rules, request, leaseKey), (answer) => ({ object, ...answer }));
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

/** The decision of a request every part decided (or every part up to the one that denied it). */
function combined(answers: readonly Answer[]): Decision {
  if (answers.length === 1) return asDecision((answers[0] as Answer).decision);
  const rules = answers.flatMap(({ decision }) => decision.rules);
  const degraded = answers.some(({ decision }) => decision.degraded);
  const leased = answers.every(({ decision }) => decision.leased);
  return {
    allowed: answers.every(({ decision }) => decision.allowed),
    rules,
    ...(degraded ? { degraded: true } : {}),
    ...(leased ? { leased } : {}),
  };
}

function clockOf(options: DecideOptions): Clock {
  return options.clock ?? systemClock;
}

/** What the client's object is asked: the rule set's request, with the client's tier when it has one. */
function clientRequestOf(options: DecideOptions, request: DecisionRequest): DecisionRequest {
  const tier = options.tier ?? options.policy.clients[options.clientId];
  return tier === undefined ? request : { ...request, tier };
}

/**
 * Per namespace, this isolate's way to its objects: concurrent requests to one object go to it as one call,
 * and the leases its objects granted answer what they cover without a call.
 */
interface ObjectLinks {
  batcher: CallBatcher<ObjectCall, ObjectAnswer>;
  leases: LeaseTable;
}

const linksByNamespace = new WeakMap<RateLimiterNamespace, ObjectLinks>();

function linksOf(namespace: RateLimiterNamespace): ObjectLinks {
  let links = linksByNamespace.get(namespace);
  if (!links) {
    const leases = new LeaseTable();
    const batcher = new CallBatcher<ObjectCall, ObjectAnswer>({
      // A request queued behind the call that brought a lease is admitted from it rather than sent.
      answerLocally: (object, call) => {
        const spent = call.leaseKey === undefined ? undefined : leases.spend(object, call.leaseKey, call.clock.nowMs());
        return spent && { decision: spent.decision, fromLease: spent.lease };
      },
    });
    links = { batcher, leases };
    linksByNamespace.set(namespace, links);
  }
  return links;
}

/**
 * Asks one object for a request its lease (under `leaseKey`, if it may be leased) did not cover when it arrived
 * (see `decidePart`):
 * batched with this isolate's other requests to it, each rule set's leases given back and asked for with them;
 * on failure, logs it and lets each rule's onError decide.
 */
async function askObject(
  options: DecideOptions,
  key: string,
  name: string,
  rules: readonly Rule[],
  request: DecisionRequest,
  leaseKey: string | undefined,
): Promise<ObjectAnswer> {
  const { namespace, policy } = options;
  const clock = clockOf(options);
  const { batcher, leases } = linksOf(namespace);
  // A call in flight takes at most two attempts of objectTimeoutMs; past twice that it has stalled.
  const waitLimitMs = 4 * policy.objectTimeoutMs;
  const send = async (batch: ObjectCall[]): Promise<ObjectAnswer[]> => {
    const sentAtMs = clock.nowMs();
    const requests = withLeaseTerms(name, batch, leases, policy, sentAtMs);
    // A retry (see `callObject`) sends the same asks and give-backs again. Give-backs are by id, so only once; a
    // lease the first attempt was granted is never known here and ends at its expiry, which can only under-admit.
    const call = callObject(namespace, name, policy.objectTimeoutMs, (stub) => stub.decide(requests));
    // Other requests wait on this call's answer: it must finish even if this request's client goes away.
    if (batch.length > 1) options.waitUntil?.(call.catch(() => undefined));
    // Set only once every request has its decision.
    let decisions: ObjectDecision[] | undefined;
    try {
      const answered = await call;
      if (answered.length !== batch.length) throw new Error(`expected ${batch.length} decisions, got ${answered.length}`);
      decisions = answered;
    } finally {
      options.counters?.recordObjectCall((clock.nowMs() - sentAtMs) / 1000);
      // Every ask is settled, the grant taken up or, when the call failed, the next call free to ask again.
      requests.forEach((sent, index) => {
        if (!sent.lease) return;
        const leaseKey = (batch[index] as ObjectCall).leaseKey as string;
        const decision = decisions?.[index];
        if (!decision) {
          leases.askFailed(name, leaseKey);
          return;
        }
        const held = leases.takeGrant(name, leaseKey, decision.lease, decision.rules, costsOf(sent), sentAtMs);
        if (held) giveBackWhenStopped(options, name, leaseKey, held);
      });
    }
    return decisions.map((decision) => ({ decision }));
  };
  try {
    return await batcher.call(name, { request, leaseKey, clock }, send, waitLimitMs);
  } catch (error) {
    const verdicts = degradedVerdicts(rules);
    console.error(
      JSON.stringify({
        event: "limiter-degraded",
        object: key,
        clientId: objectNameOf(options.prefix, options.clientId),
        rules: rules.map((r) => r.name),
        allowed: isAdmitted(verdicts),
        error: String(error),
      }),
    );
    return { decision: { allowed: isAdmitted(verdicts), rules: verdicts, degraded: true } };
  }
}

/**
 * Gives a lease back to its object once this isolate stops spending it, in the waitUntil of the request that brought
 * it, unless a request of the rule set carries it back first. Without it, a lease whose rule set pauses for longer
 * than its lifetime would end at its object unreturned, its unspent requests lost to the client until they refill.
 * A give-back that fails leaves the lease to end at its expiry, which can only under-admit.
 */
function giveBackWhenStopped(options: DecideOptions, object: string, leaseKey: string, lease: HeldLease): void {
  if (!options.waitUntil) return;
  const clock = clockOf(options);
  const { namespace, policy } = options;
  const waitMs = Math.max(0, lease.endsAtMs - clock.nowMs());
  const givingBack = (clock.wait?.(waitMs) ?? scheduler.wait(waitMs)).then(async () => {
    const givenBack = linksOf(namespace).leases.endNow(object, leaseKey, lease);
    if (givenBack) await callObject(namespace, object, policy.objectTimeoutMs, (stub) => stub.giveBack(givenBack));
  });
  options.waitUntil(
    givingBack.catch((error) => console.error(JSON.stringify({ event: "lease-give-back-failed", object, error: String(error) }))),
  );
}

/**
 * The batch's requests as sent: for each rule set that may be leased, the first of its requests gives back the
 * leases that ended here, and the last asks for a new one when the rule set is hot (see `LeaseTable.termsFor`),
 * so that the lease is granted on what the batch's own requests leave. The others go as they are.
 */
function withLeaseTerms(
  object: string,
  batch: readonly ObjectCall[],
  leases: LeaseTable,
  policy: DecideOptions["policy"],
  nowMs: number,
): DecisionRequest[] {
  const requests = batch.map((ask) => ask.request);
  const counts = new Map<string, { first: number; last: number; count: number }>();
  batch.forEach(({ leaseKey }, index) => {
    if (leaseKey === undefined) return;
    const seen = counts.get(leaseKey);
    if (seen) {
      seen.last = index;
      seen.count++;
    } else counts.set(leaseKey, { first: index, last: index, count: 1 });
  });
  for (const [leaseKey, { first, last, count }] of counts) {
    // An ask's call takes at most two attempts of objectTimeoutMs; one unanswered for twice that has died.
    const { ask, givenBack } = leases.termsFor(object, leaseKey, count, policy.leaseLifetimeMs, nowMs, 4 * policy.objectTimeoutMs);
    if (givenBack) requests[first] = { ...(requests[first] as DecisionRequest), givenBack };
    if (ask) requests[last] = { ...(requests[last] as DecisionRequest), lease: ask };
  }
  return requests;
}

/** Units one request costs each rule, in the order of the verdicts. */
function costsOf(request: DecisionRequest): number[] {
  return request.rules.map((rule) => rule.cost);
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

/** The decision without the object's charge id and lease, which are the Worker's business only; as it is when it has neither. */
function asDecision(result: ObjectDecision): Decision {
  if (result.chargeId === undefined && result.lease === undefined) return result;
  const { chargeId: _, lease: __, ...decision } = result;
  return decision;
}
