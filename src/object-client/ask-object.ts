/** Asking one object for a part of a request: batched with this isolate's other calls to it, and with its leases. */

import { LEASES_LISTED_MS } from "../metrics/decision-counters.ts";
import type { DecisionRequest, ObjectDecision } from "../object/protocol.ts";
import type { Rule } from "../policy/types.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { CallBatcher } from "./call-batcher.ts";
import { callObject, type RateLimiterNamespace } from "./call-object.ts";
import { Confirmations } from "./confirmations.ts";
import type { DecideOptions } from "./decide-request.ts";
import { degradedVerdicts, isAdmitted } from "./degraded-verdicts.ts";
import { type HeldLease, LeaseTable } from "./lease-table.ts";
import { objectNameOf } from "./object-name.ts";
import { PartDenials } from "./part-denials.ts";

/** A request for one object's call, with the key of its rule set's leases in this isolate when it may be leased. */
interface ObjectCall {
  request: DecisionRequest;
  leaseKey: string | undefined;
  clock: Clock;
  /** Whether other parts decide the request too: a spend from a lease then waits to be settled (`holdSpend`). */
  shared: boolean;
}

/** One object's decision on a request, and the lease it was admitted from when the isolate answered it. */
export interface ObjectAnswer {
  decision: ObjectDecision;
  fromLease?: HeldLease;
}

export function clockOf(options: DecideOptions): Clock {
  return options.clock ?? systemClock;
}

/**
 * Per namespace, this isolate's way to its objects: concurrent requests to one object go to it as one call,
 * the leases its objects granted answer what they cover without a call, a shared object's denial answers its repeats
 * until its wait ends, and the charges it saw admitted everywhere are confirmed with its next call to each.
 */
interface ObjectLinks {
  batcher: CallBatcher<ObjectCall, ObjectAnswer>;
  leases: LeaseTable;
  partDenials: PartDenials;
  confirmations: Confirmations;
}

const linksByNamespace = new WeakMap<RateLimiterNamespace, ObjectLinks>();

export function linksOf(namespace: RateLimiterNamespace): ObjectLinks {
  let links = linksByNamespace.get(namespace);
  if (!links) {
    const leases = new LeaseTable();
    const batcher = new CallBatcher<ObjectCall, ObjectAnswer>({
      // A request queued behind the call that brought a lease is admitted from it rather than sent.
      answerLocally: (object, call) => {
        const spent = call.leaseKey === undefined ? undefined : leases.spend(object, call.leaseKey, call.clock.nowMs());
        // Held at once: the batch this answer lets go may carry the lease back in the same turn.
        if (spent && call.shared) leases.holdSpend(spent.lease);
        return spent && { decision: spent.decision, fromLease: spent.lease };
      },
    });
    links = { batcher, leases, partDenials: new PartDenials(), confirmations: new Confirmations() };
    linksByNamespace.set(namespace, links);
  }
  return links;
}

/** Forgets what this isolate remembers of an object's denials, after an admin change to the object made through it. */
export function forgetSharedDenials(namespace: RateLimiterNamespace, object: string): void {
  linksOf(namespace).partDenials.forgetObject(object);
}

/**
 * Asks one object for a request its lease (under `leaseKey`, if it may be leased) did not cover when it arrived
 * (see `decidePart`):
 * batched with this isolate's other requests to it, each rule set's leases given back and asked for with them;
 * on failure, logs it and lets each rule's onError decide.
 */
export async function askObject(
  options: DecideOptions,
  key: string,
  name: string,
  rules: readonly Rule[],
  request: DecisionRequest,
  leaseKey: string | undefined,
): Promise<ObjectAnswer> {
  const { namespace, policy } = options;
  const clock = clockOf(options);
  const { batcher, leases, confirmations } = linksOf(namespace);
  // A call in flight takes at most two attempts of objectTimeoutMs; past twice that it has stalled.
  const waitLimitMs = 4 * policy.objectTimeoutMs;
  const send = async (batch: ObjectCall[]): Promise<ObjectAnswer[]> => {
    const sentAtMs = clock.nowMs();
    const requests = withLeaseTerms(name, batch, leases, policy, sentAtMs);
    const confirmed = confirmations.take(name);
    if (confirmed) requests[0] = { ...(requests[0] as DecisionRequest), confirmed };
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
    } catch (error) {
      if (confirmed) confirmations.putBack(name, confirmed);
      throw error;
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
        if (held) {
          // A lease lasts about a second and is renewed while busy: listed for as long as a flush may take to arrive.
          options.counters?.recordEnd("leases", name, Math.max(held.endsAtMs, sentAtMs + LEASES_LISTED_MS));
          giveBackWhenStopped(options, name, leaseKey, held);
        }
      });
    }
    return decisions.map((decision) => ({ decision }));
  };
  try {
    const shared = options.ruleSet.parts.length > 1;
    return await batcher.call(name, { request, leaseKey, clock, shared }, send, waitLimitMs);
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
  const { leases } = linksOf(namespace);
  const wait = (ms: number) => clock.wait?.(ms) ?? scheduler.wait(ms);
  const givingBack = wait(waitMs).then(async () => {
    // Its spends still being decided elsewhere are waited for, but not past the object's end of the lease (twice its
    // lifetime from the grant; this waits at most once more what it spent for): a give-back sent then would be lost.
    await Promise.race([leases.settled(lease), wait(Math.max(0, lease.endsAtMs - lease.sentAtMs))]);
    const givenBack = leases.endNow(object, leaseKey, lease);
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
