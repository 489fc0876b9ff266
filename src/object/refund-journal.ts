import { algorithmFor } from "../limiter/registry.ts";
import type { Bucket } from "./bucket.ts";

/**
 * One change to the buckets: an admitted decision, or a lease granted, given back or ended (docs/architecture.md,
 * invariant 7): what it charged to which bucket, and when.
 */
export interface JournalEntry {
  id: string;
  atMs: number;
  /** Units charged to each rule; a lease that ends charges 0, its end changing only what the bucket refills to. */
  charges: Array<{ rule: string; cost: number }>;
  /** A provisional charge may still be refunded (a global rule may deny the request afterwards). */
  provisional: boolean;
  /** Set when the units are given back to the buckets (a lease's unspent requests) rather than charged. */
  credit?: boolean;
  /** Rule → units outstanding in leases until this entry: the bucket refilled only to its capacity less these. */
  lentBefore?: Record<string, number>;
  /**
   * Set on a lease's grant, its `id` the lease's, until the lease ends: kept meanwhile, so that its give-back can count
   * each spend from when it was made (`respendLease`).
   */
  leaseOpen?: boolean;
}

/** Requests a lease's isolate spent at one moment, on the object's clock. */
export interface LeaseSpend {
  atMs: number;
  requests: number;
}

/** How long a provisional charge can be refunded; a later refund is refused, keeping the charge (never over-admits). */
export const REFUND_WINDOW_MS = 5_000;

/**
 * Makes refunds exact. Undoing a charge by adding its cost back is not: if the
 * bucket refilled to its cap after the charge, adding the cost back would create
 * tokens the bucket never had. Instead the journal keeps every bucket as it was
 * before the oldest refundable charge (or the grant of the oldest lease still out,
 * see `respendLease`), and every charge since; a refund replays
 * them all without the refunded one, which yields exactly the state as if it had
 * never been charged. Replaying can only admit more (each algorithm is monotone in
 * what it has spent); should it ever deny, the refund is refused and the charge kept.
 * Lease events are entries too, each with the units leases held until it, so that a
 * replay refills each span no higher than the leases left of the bucket, as it was.
 */
export class RefundJournal {
  private bases = new Map<string, Bucket>();
  private entries: JournalEntry[] = [];

  /** Whether a provisional charge may still be refunded at `nowMs`, which would give its units back sooner than they refill. */
  hasRefundable(nowMs: number): boolean {
    return this.entries.some((entry) => entry.provisional && entry.atMs + REFUND_WINDOW_MS > nowMs);
  }

  /** Whether there is any refundable charge, i.e. whether admitted decisions must be recorded. */
  get isActive(): boolean {
    return this.entries.length > 0;
  }

  /**
   * Makes charges final whose requests were admitted everywhere (`DecisionRequest.confirmed`): they can no longer be
   * refunded, so a denial need not wait on them, and the journal forgets them as soon as no earlier charge may still
   * be refunded. An id it does not hold (refunded, trimmed, another object's) changes nothing.
   */
  confirm(ids: readonly string[], nowMs: number): void {
    if (this.entries.length === 0) return;
    const confirmed = new Set(ids);
    for (const entry of this.entries) if (entry.provisional && confirmed.has(entry.id)) entry.provisional = false;
    this.trim(nowMs);
  }

  /** Records an admitted decision or a lease event; `before` holds each bucket it touches as it was just before it. */
  record(entry: JournalEntry, before: ReadonlyMap<string, Bucket>): void {
    for (const { rule } of entry.charges) {
      const bucket = before.get(rule);
      if (bucket && !this.bases.has(rule)) this.bases.set(rule, bucket);
    }
    this.entries.push(entry);
  }

  /**
   * The buckets as if charge `id` had never happened, or undefined if it cannot be
   * refunded (unknown, expired, or a replay that would deny).
   */
  refund(id: string, nowMs: number): Map<string, Bucket> | undefined {
    this.trim(nowMs);
    // Its own window, whatever trimming has kept: an open lease keeps the entries after its grant (`leaseOpen`).
    const index = this.entries.findIndex((entry) => entry.id === id && entry.provisional && entry.atMs + REFUND_WINDOW_MS > nowMs);
    if (index < 0) return undefined;
    const remaining = this.entries.filter((_, i) => i !== index);
    const replayed = this.replay(this.bases, remaining);
    if (!replayed) return undefined;
    this.entries = remaining;
    this.trim(nowMs);
    // With nothing left to refund, the buckets are the truth: bases kept from before would be replayed by the next
    // refund, erasing every charge made in between without an entry (another rule set's, a lease's).
    if (this.entries.length === 0) this.clear();
    return replayed;
  }

  /** Folds the entries that can no longer be refunded into the bases, and forgets everything once none can. */
  trim(nowMs: number): void {
    let folded = 0;
    while (folded < this.entries.length) {
      const entry = this.entries[folded];
      if (!entry || entry.leaseOpen || (entry.provisional && entry.atMs + REFUND_WINDOW_MS > nowMs)) break;
      folded++;
    }
    if (folded === 0) return;
    const remaining = this.entries.slice(folded);
    // With nothing left to refund, the buckets themselves are the truth: no replay needed.
    const bases = remaining.length > 0 ? this.replay(this.bases, this.entries.slice(0, folded)) : undefined;
    if (!bases) {
      this.clear();
      return;
    }
    this.bases = bases;
    this.entries = remaining;
  }

  /**
   * The buckets as if lease `id`'s spends had been charged each when it was made, and its unspent requests never
   * lent, rather than the whole lease charged at its grant and held out of the refill until now (its give-back): a
   * bucket full meanwhile then refills what the isolate spent from when it spent it, which the lease's cap withheld
   * (docs/architecture.md, invariant 7). Spends are as the isolate reports them, each no earlier than made, so the
   * result never holds more than the bucket would have. `perRequest` is what one request of the lease costs each
   * rule, `lentNow` each rule's units out in leases now, this one's included. Undefined, changing nothing, when the
   * grant is no longer here (ended, or the journal cleared since) or a replay would deny.
   */
  respendLease(
    id: string,
    spends: readonly LeaseSpend[],
    lease: { requests: number; perRequest: Readonly<Record<string, number>> },
    lentNow: Readonly<Record<string, number>>,
    nowMs: number,
  ): Map<string, Bucket> | undefined {
    const index = this.entries.findIndex((entry) => entry.leaseOpen && entry.id === id);
    if (index < 0) return undefined;
    const units = (rule: string) => lease.requests * (lease.perRequest[rule] ?? 0);
    const withoutLease = (lent: Record<string, number> | undefined) =>
      lent && Object.fromEntries(Object.entries(lent).map(([rule, held]) => [rule, Math.max(0, held - units(rule))]));
    // Every entry after the grant was made while the lease was out: its spans are refilled without it now.
    const later: JournalEntry[] = this.entries.slice(index + 1).map((entry) => {
      const lentBefore = withoutLease(entry.lentBefore);
      return lentBefore ? { ...entry, lentBefore } : entry;
    });
    const spent: JournalEntry[] = spends.map(({ atMs, requests }) => ({
      id: "",
      provisional: false,
      atMs: Math.min(Math.max(atMs, this.entries[index]?.atMs ?? atMs), nowMs),
      charges: Object.entries(lease.perRequest).map(([rule, cost]) => ({ rule, cost: requests * cost })),
    }));
    const entries = [...this.entries.slice(0, index), ...mergedByTime(later, spent, withoutLease({ ...lentNow }) ?? {})];
    const replayed = this.replay(this.bases, entries);
    if (!replayed) return undefined;
    this.entries = entries;
    this.trim(nowMs);
    if (this.entries.length === 0) this.clear();
    return replayed;
  }

  /** Ends lease `id`'s hold on the journal: its give-back or expiry is recorded, and its spends stay counted from its grant. */
  closeLease(id: string): void {
    const entry = this.entries.find((each) => each.leaseOpen && each.id === id);
    if (entry) entry.leaseOpen = false;
  }

  /** Forgets everything, for when the buckets themselves are deleted. */
  clear(): void {
    this.bases.clear();
    this.entries = [];
  }

  private replay(bases: ReadonlyMap<string, Bucket>, entries: readonly JournalEntry[]): Map<string, Bucket> | undefined {
    const buckets = new Map(bases);
    for (const entry of entries) {
      for (const { rule, cost } of entry.charges) {
        const bucket = buckets.get(rule);
        if (!bucket) continue;
        const algorithm = algorithmFor(bucket.algorithm);
        const lent = entry.lentBefore?.[rule] ?? 0;
        const state = algorithm.leasing ? algorithm.leasing.advance(bucket.state, bucket.limits, entry.atMs, lent) : bucket.state;
        if (entry.credit) {
          // Only a leasing algorithm was ever lent units to take back.
          if (algorithm.leasing) buckets.set(rule, { ...bucket, state: algorithm.leasing.credit(state, bucket.limits, entry.atMs, cost) });
          continue;
        }
        const outcome = algorithm.decide(state, bucket.limits, entry.atMs, cost);
        if (!outcome.decision.allowed) return undefined;
        buckets.set(rule, { ...bucket, state: outcome.state });
      }
    }
    return buckets;
  }
}

/**
 * `later` with `spends` placed among them by time, each after the entries of its own moment (later is never
 * earlier than made), and each given the units leases held of its rules in its span: those of the next entry that
 * charges the rule, else `lentAfter`, what they hold after the last.
 */
function mergedByTime(
  later: readonly JournalEntry[],
  spends: readonly JournalEntry[],
  lentAfter: Readonly<Record<string, number>>,
): JournalEntry[] {
  const merged: JournalEntry[] = [];
  let next = 0;
  for (const spend of [...spends].sort((a, b) => a.atMs - b.atMs)) {
    while (next < later.length && (later[next] as JournalEntry).atMs <= spend.atMs) merged.push(later[next++] as JournalEntry);
    merged.push(spend);
  }
  merged.push(...later.slice(next));
  const lentAhead: Record<string, number> = { ...lentAfter };
  for (let i = merged.length - 1; i >= 0; i--) {
    const entry = merged[i] as JournalEntry;
    if (spends.includes(entry)) {
      entry.lentBefore = Object.fromEntries(entry.charges.map(({ rule }) => [rule, lentAhead[rule] ?? 0]));
    } else for (const [rule, lent] of Object.entries(entry.lentBefore ?? {})) lentAhead[rule] = lent;
  }
  return merged;
}
