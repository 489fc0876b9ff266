import { algorithmFor } from "../limiter/registry.ts";
import type { RuleLimits } from "../limiter/types.ts";
import { periodMsOf } from "../limiter/units.ts";
import type { Bucket } from "./bucket.ts";
import type { HoldSettlement, LeaseAsk, LeaseGrant, LeaseReturn, ObjectRule } from "./protocol.ts";
import type { JournalEntry, LeaseSpend, RefundJournal } from "./refund-journal.ts";

/**
 * The shortest lease granted: an isolate stops spending a lease a margin of at least 50 ms before it ends (see
 * `object-client/lease-table.ts`), so a shorter one would be written for nothing. A fixed window's lease ends with
 * its window, so none is granted in a window's last 100 ms.
 */
export const MIN_LEASE_MS = 100;

/**
 * The most requests of a rule one lease may hold: what the rule refills in one lease lifetime, so that a lease its
 * isolate never gives back (the isolate crashed or was evicted) costs the client at most one lifetime of refill
 * (docs/architecture.md, Leases). A rule that refills fewer than two requests a lifetime is not worth leasing: its
 * object serves its requests easily.
 */
export function leasableRequests(limits: RuleLimits, { cost, lifetimeMs }: { cost: number; lifetimeMs: number }): number {
  return Math.floor((limits.limit * lifetimeMs) / periodMsOf(limits) / cost);
}

/** A lease as its object keeps it until it is given back or expires. */
export interface OutstandingLease {
  /**
   * Epoch ms, on the object's clock, at which the lease ends if it is not given back: its spending lifetime, then as
   * long again for the give-back to arrive (a fixed window's, at the latest with its window, after which a give-back
   * has nothing to give). What is unspent by then is lost.
   */
  expiresAtMs: number;
  /** Requests granted: each may be admitted by the isolate, charged `perRequest` units of each rule. */
  requests: number;
  /** Epoch ms, on the object's clock, at which a lease (not a hold) was granted: what its spends' times count from. */
  grantedAtMs?: number;
  /** Rule name → the units one request of the lease costs that rule. */
  perRequest: Record<string, number>;
  /**
   * Set for a hold: one admitted request's charge, outstanding until its response settles it (`settleHold`) or it
   * expires, standing as charged. Rule name → the rule's `count`, for the rules that keep only some requests.
   */
  hold?: { counts: Record<string, "failed" | "successful">; resetsOnSuccess?: string[] };
}

/** One rule's charge to hold: the units an admitted request was charged, and the rule's `count`. */
export interface HeldCharge {
  rule: string;
  cost: number;
  count?: "failed" | "successful" | undefined;
  /** Whether a successful settlement starts the rule's bucket afresh (`rules[].resetOnSuccess`). */
  resetOnSuccess?: boolean | undefined;
}

/**
 * The leases a client's object has granted and not yet seen end (docs/architecture.md, invariant 7), and the holds
 * of admissions awaiting their settlement. Every unit granted or held counts as outstanding until its lease is given
 * back or its hold settled, or either expires, whatever the isolate has spent of it, and each bucket refills only up
 * to its capacity minus its outstanding units (`Leasing.advance`), so a bucket and the leases and holds drawn on it
 * are together one bucket: giving units back is then exact however long after the charge it comes. Expiries are
 * applied each at its own moment, in order.
 */
export class LeaseLedger {
  private readonly leases: Map<string, OutstandingLease>;

  constructor(stored: Record<string, OutstandingLease> = {}) {
    this.leases = new Map(Object.entries(stored));
  }

  /** Whether no lease is outstanding. */
  get isEmpty(): boolean {
    return this.leases.size === 0;
  }

  /** When the last outstanding lease expires (0 when none is). */
  get latestExpiryMs(): number {
    let latest = 0;
    for (const lease of this.leases.values()) latest = Math.max(latest, lease.expiresAtMs);
    return latest;
  }

  /**
   * What a refund-journal entry charging these rules records of the leases: the units outstanding in each until it
   * (see `JournalEntry.lentBefore`); nothing while no lease is outstanding.
   */
  lentBefore(charges: JournalEntry["charges"]): Pick<JournalEntry, "lentBefore"> {
    if (this.leases.size === 0) return {};
    return { lentBefore: Object.fromEntries(charges.map(({ rule }) => [rule, this.lentUnits(rule)])) };
  }

  /** Units of `rule` outstanding in leases and holds. */
  lentUnits(rule: string): number {
    let units = 0;
    for (const lease of this.leases.values()) units += lease.requests * (lease.perRequest[rule] ?? 0);
    return units;
  }

  /** Units of `rule` outstanding in holds alone. */
  heldUnits(rule: string): number {
    let units = 0;
    for (const lease of this.leases.values()) if (lease.hold) units += lease.perRequest[rule] ?? 0;
    return units;
  }

  /**
   * Holds an admitted request's charges, made already, until its response settles them (`settleHold`), for at most
   * `ttlMs`: then they stand as charged, which can only under-admit. Returns the hold's id.
   */
  hold(charges: readonly HeldCharge[], nowMs: number, ttlMs: number): string {
    const id = crypto.randomUUID();
    const perRequest: Record<string, number> = {};
    const counts: Record<string, "failed" | "successful"> = {};
    const resetsOnSuccess: string[] = [];
    for (const { rule, cost, count, resetOnSuccess } of charges) {
      perRequest[rule] = cost;
      if (count !== undefined) counts[rule] = count;
      if (resetOnSuccess) resetsOnSuccess.push(rule);
    }
    const hold = resetsOnSuccess.length > 0 ? { counts, resetsOnSuccess } : { counts };
    this.leases.set(id, { expiresAtMs: nowMs + ttlMs, requests: 1, perRequest, hold });
    return id;
  }

  /**
   * Settles a hold (see `HoldSettlement`): each rule keeps its charge at the settled cost if its `count` says so,
   * and what it held beyond that is the bucket's again; a cost above what was held is charged on top (the bucket
   * owes it). Call after `settle` to `nowMs`. Answers the rules a success starts afresh (`resetOnSuccess`), which
   * the caller resets; undefined for a hold that has ended already (settled, or expired).
   */
  settleHold(
    buckets: Map<string, Bucket>,
    id: string,
    settlement: HoldSettlement,
    nowMs: number,
    journal: RefundJournal,
  ): { resets: readonly string[] } | undefined {
    const lease = this.leases.get(id);
    if (!lease?.hold) return undefined;
    const { counts } = lease.hold;
    const charges = Object.entries(lease.perRequest).map(([rule, held]) => {
      const count = counts[rule];
      const keeps = count === undefined || (count === "successful") === settlement.successful;
      return { rule, cost: held - (keeps ? (settlement.cost ?? held) : 0) };
    });
    this.record(journal, buckets, { atMs: nowMs, charges, credit: true });
    this.leases.delete(id);
    this.credit(buckets, charges, nowMs);
    return { resets: settlement.successful ? (lease.hold.resetsOnSuccess ?? []) : [] };
  }

  /**
   * Brings the buckets that leases draw on to `nowMs`: each lease that expired by then ends at its own
   * moment, each span refilled with the units outstanding in it. Each end is recorded in `journal` while it
   * keeps refundable charges, so that a refund replays the spans as they were.
   */
  settle(buckets: Map<string, Bucket>, nowMs: number, journal: RefundJournal): void {
    if (this.leases.size === 0) return;
    const expired = [...this.leases]
      .filter(([, lease]) => lease.expiresAtMs <= nowMs)
      .sort(([, a], [, b]) => a.expiresAtMs - b.expiresAtMs);
    for (const [id, lease] of expired) {
      const rules = Object.keys(lease.perRequest);
      this.record(journal, buckets, { atMs: lease.expiresAtMs, charges: rules.map((rule) => ({ rule, cost: 0 })) });
      journal.closeLease(id);
      this.advance(buckets, rules, lease.expiresAtMs);
      this.leases.delete(id);
    }
    const drawnOn = new Set<string>();
    for (const lease of this.leases.values()) for (const rule of Object.keys(lease.perRequest)) drawnOn.add(rule);
    this.advance(buckets, [...drawnOn], nowMs);
  }

  /**
   * Ends a lease an isolate gives back before it expires: the requests it did not spend are the buckets'
   * again, and those it spent count from when it says it spent them (`LeaseReturn.spent`), while its grant is still
   * in the journal, rather than from the grant: their refill is then not lost to the lease's cap while the bucket was
   * full. Call after `settle` to `nowMs`. False for a lease that has already ended.
   */
  giveBack(buckets: Map<string, Bucket>, given: LeaseReturn, nowMs: number, journal: RefundJournal): boolean {
    const lease = this.leases.get(given.id);
    if (!lease || lease.hold) return false;
    const unspent = Math.max(0, Math.min(lease.requests, Math.floor(given.unspentRequests)));
    const spends =
      given.spent && lease.grantedAtMs !== undefined && spendsOf(given.spent, lease.requests - unspent, lease.grantedAtMs, nowMs);
    if (spends) {
      const lentNow = Object.fromEntries(Object.keys(lease.perRequest).map((rule) => [rule, this.lentUnits(rule)]));
      const replayed = journal.respendLease(given.id, spends, lease, lentNow, nowMs);
      if (replayed) {
        for (const [name, bucket] of replayed) buckets.set(name, bucket);
        this.leases.delete(given.id);
        return true;
      }
    }
    const charges = Object.entries(lease.perRequest).map(([rule, units]) => ({ rule, cost: unspent * units }));
    this.record(journal, buckets, { atMs: nowMs, charges, credit: true });
    journal.closeLease(given.id);
    this.leases.delete(given.id);
    this.credit(buckets, charges, nowMs);
    return true;
  }

  /**
   * Grants a lease with an admitted request, charging its units to every rule's bucket now: as many requests
   * as asked, but never more than half of what any rule has left (in whole requests), so that the next
   * isolate to ask still gets some, nor more than any rule refills in the lifetime (`leasableRequests`); for no
   * more than the shortest lifetime the rules allow. None when a rule cannot lease (the sliding windows) or only
   * reports (shadow), when there is not enough left, or when it could last less than `MIN_LEASE_MS`. The isolate
   * spends it for that lifetime; the object holds its units as long again, so that the isolate's give-back, sent
   * when it stops spending, arrives before the lease ends.
   */
  grant(
    buckets: Map<string, Bucket>,
    rules: readonly ObjectRule[],
    ask: LeaseAsk,
    nowMs: number,
    journal: RefundJournal,
  ): LeaseGrant | undefined {
    let requests = Math.floor(ask.requests);
    const askedMs = Math.max(0, Math.floor(ask.lifetimeMs));
    // The latest any rule lets a lease last: the end of its window for a fixed window.
    let rulesEndAtMs = Number.POSITIVE_INFINITY;
    for (const rule of rules) {
      const bucket = buckets.get(rule.name);
      const algorithm = algorithmFor(rule.algorithm);
      if (!bucket || !algorithm.leasing || rule.mode !== "enforce") return undefined;
      const left = algorithm.decide(bucket.state, bucket.limits, nowMs, 0).decision.remaining;
      rulesEndAtMs = Math.min(rulesEndAtMs, algorithm.leasing.leaseEndsAtMs(bucket.state, bucket.limits, nowMs));
      const refilled = leasableRequests(bucket.limits, { cost: rule.cost, lifetimeMs: askedMs });
      requests = Math.min(requests, Math.floor(Math.floor(left / rule.cost) / 2), refilled);
    }
    const spendsUntilMs = Math.min(nowMs + askedMs, rulesEndAtMs);
    const lifetimeMs = spendsUntilMs - nowMs;
    if (requests < 1 || lifetimeMs < MIN_LEASE_MS) return undefined;
    const charged = new Map<string, Bucket>();
    for (const rule of rules) {
      const bucket = buckets.get(rule.name) as Bucket;
      const outcome = algorithmFor(rule.algorithm).decide(bucket.state, bucket.limits, nowMs, requests * rule.cost);
      if (!outcome.decision.allowed) return undefined;
      charged.set(rule.name, { ...bucket, state: outcome.state });
    }
    const id = crypto.randomUUID();
    // Recorded whether or not a refund is pending: its give-back may count its spends from when they were made.
    journal.trim(nowMs);
    const charges = rules.map((rule) => ({ rule: rule.name, cost: requests * rule.cost }));
    journal.record({ id, provisional: false, leaseOpen: true, atMs: nowMs, charges, ...this.lentBefore(charges) }, buckets);
    for (const [name, bucket] of charged) buckets.set(name, bucket);
    const perRequest = Object.fromEntries(rules.map((rule) => [rule.name, rule.cost]));
    this.leases.set(id, { expiresAtMs: Math.min(spendsUntilMs + lifetimeMs, rulesEndAtMs), requests, perRequest, grantedAtMs: nowMs });
    return { id, requests, lifetimeMs };
  }

  /** What to store: every outstanding lease, so that a restart keeps counting them. */
  toStored(): Record<string, OutstandingLease> {
    return Object.fromEntries(this.leases);
  }

  /** Records a lease event in `journal` while it keeps refundable charges, with the units outstanding until it. */
  private record(
    journal: RefundJournal,
    buckets: ReadonlyMap<string, Bucket>,
    event: Pick<JournalEntry, "atMs" | "charges" | "credit">,
  ): void {
    if (!journal.isActive) return;
    journal.trim(event.atMs);
    journal.record({ id: "", provisional: false, ...event, ...this.lentBefore(event.charges) }, buckets);
  }

  /** Gives each charge's units back to its rule's bucket (takes them, for a negative cost), after `advance` to `nowMs`. */
  private credit(buckets: Map<string, Bucket>, charges: JournalEntry["charges"], nowMs: number): void {
    for (const { rule, cost } of charges) {
      const bucket = buckets.get(rule);
      const leasing = bucket && algorithmFor(bucket.algorithm).leasing;
      if (!bucket || !leasing || cost === 0) continue;
      buckets.set(rule, { ...bucket, state: leasing.credit(bucket.state, bucket.limits, nowMs, cost) });
    }
  }

  /** Refills each of these rules' buckets to `atMs` under the units outstanding now. */
  private advance(buckets: Map<string, Bucket>, rules: string[], atMs: number): void {
    for (const rule of rules) {
      const bucket = buckets.get(rule);
      const leasing = bucket && algorithmFor(bucket.algorithm).leasing;
      if (!bucket || !leasing) continue;
      buckets.set(rule, { ...bucket, state: leasing.advance(bucket.state, bucket.limits, atMs, this.lentUnits(rule)) });
    }
  }
}

/**
 * A give-back's spends (`LeaseReturn.spent`) on the object's clock: each [ms after the isolate sent its request, requests]
 * counted from the grant, which came after the send, so never earlier than made; any not reported, from `nowMs`.
 * Undefined when they claim more than were spent, or are out of order: the give-back then counts them as before.
 */
function spendsOf(
  reported: ReadonlyArray<readonly [number, number]>,
  spentRequests: number,
  grantedAtMs: number,
  nowMs: number,
): LeaseSpend[] | undefined {
  const spends: LeaseSpend[] = [];
  let total = 0;
  let latestMs = 0;
  for (const [afterMs, requests] of reported) {
    if (!Number.isInteger(afterMs) || !Number.isInteger(requests) || afterMs < latestMs || requests < 1) return undefined;
    latestMs = afterMs;
    total += requests;
    spends.push({ atMs: Math.min(grantedAtMs + afterMs, nowMs), requests });
  }
  if (total > spentRequests) return undefined;
  if (total < spentRequests) spends.push({ atMs: nowMs, requests: spentRequests - total });
  return spends;
}
