import type { Decision, LeaseAsk, LeaseGrant, LeaseReturn, RuleVerdict } from "../object/protocol.ts";
import { RecentMap } from "../runtime/recent-map.ts";

/**
 * A lease this isolate holds: requests of one rule set, already charged by their object, that it may admit
 * itself until `endsAtMs` (docs/architecture.md, invariant 7).
 */
export interface HeldLease {
  id: string;
  /** Requests granted, and those not spent yet. */
  granted: number;
  unspent: number;
  /** Set once it has gone back to its object: a request unspent from it then is lost rather than given back twice. */
  givenBack: boolean;
  /** On this isolate's clock: when the request that brought it was sent, plus its lifetime, less the margin. */
  endsAtMs: number;
  /** On this isolate's clock: when the request that brought it was sent, which the times of its spends count from. */
  sentAtMs: number;
  /**
   * When its requests were spent: [ms after `sentAtMs`, requests], in order (`LeaseReturn.spent`); at most
   * `MAX_SPEND_TIMES` pairs, the oldest two merged into the later one's time beyond that.
   */
  spends: Array<[number, number]>;
  /**
   * Spends whose requests other parts are still deciding (`holdSpend`): one may yet be undone, so the lease goes back
   * to its object only once none is, and no spend is lost to a give-back that came first.
   */
  pending: number;
  /** Called once `pending` is back at 0, for a give-back waiting on it (`settled`). */
  onSettled?: (() => void) | undefined;
  /** The verdicts of the admission that brought it, each rule's `remaining` counting the lease's requests as left. */
  verdicts: readonly RuleVerdict[];
  /** Units one request of the lease costs each of those rules, in the same order. */
  costs: readonly number[];
}

/** What the table knows of one object's rule set in this isolate. */
interface Entry {
  lease: HeldLease | undefined;
  /** Leases ended here and not yet given back to their object. */
  toGiveBack: HeldLease[];
  /** When the call in flight that asks for a lease was sent: one at a time, and one that never answered is forgotten. */
  askedAtMs: number | undefined;
  /** Requests seen since `sinceMs`: the rate a lease is sized from. */
  arrivals: number;
  sinceMs: number;
}

/** What to send along with a call to an object for one rule set. */
interface LeaseTerms {
  ask?: LeaseAsk;
  givenBack?: LeaseReturn[];
}

/** At most this many moments a lease's spends are told by: a give-back stays small however many it spent. */
const MAX_SPEND_TIMES = 64;

/** A rate measured over less than this is taken as measured over this, so that two requests at once do not ask for thousands. */
const MIN_RATE_WINDOW_MS = 50;

/** The most requests one lease is asked for; the object grants less anyway (see `LeaseLedger.grant`). */
const MAX_LEASE_REQUESTS = 100_000;

/** At most this many rule sets are remembered per object; beyond it the one least recently seen is forgotten. */
const MAX_RULE_SETS_PER_OBJECT = 16;

/**
 * How much earlier than its object the isolate stops spending a lease: a tenth of its lifetime, and never less than
 * this. It covers the two clocks' difference and a turn's `Date.now()`, which stands still between I/O.
 */
export const MIN_LEASE_MARGIN_MS = 50;

/**
 * The leases of one isolate, per object and rule set: at most 10,000 objects, least recently used first out, each
 * with at most 16 rule sets. Keyed by the object's name, then the rule set's, so that a lookup builds no string
 * (bench/README.md, "The hot key").
 * A rule set is leased only once this isolate has seen it hot: requests of it queued behind a call in flight,
 * or a recent rate that would spend a lease of two requests. A lease is asked for the isolate's recent rate of the
 * rule set × the lease's lifetime, and granted what the object can spare (`LeaseLedger.grant` says how much). What
 * a lease does not spend goes back to its object with the next call for the same rule set, or on its own when its
 * time is up (`endNow`); a lease forgotten here (evicted, or the isolate gone) ends at its expiry, and its unspent
 * requests are not the client's until then: that can only under-admit (docs/architecture.md, Leases).
 */
export class LeaseTable {
  private readonly objects: RecentMap<Map<string, Entry>>;

  constructor(maxObjects = 10_000) {
    this.objects = new RecentMap(maxObjects);
  }

  /** Objects remembered (for tests). */
  get size(): number {
    return this.objects.size;
  }

  private entry(object: string, ruleSet: string): Entry | undefined {
    return this.objects.get(object)?.get(ruleSet);
  }

  /**
   * A request of the rule set arrives at `nowMs`: counted for the rate its next lease is sized from, and
   * admitted from its lease if it can be (see `spend`).
   */
  arrive(object: string, ruleSet: string, nowMs: number): SpentFromLease | undefined {
    let entries = this.objects.get(object);
    const entry = entries?.get(ruleSet);
    if (!entry) {
      if (!entries) {
        entries = new Map();
        this.objects.set(object, entries);
      } else if (entries.size >= MAX_RULE_SETS_PER_OBJECT) {
        // The first inserted is the one least recently seen: each rule set seen again goes back to the end.
        entries.delete(entries.keys().next().value as string);
      }
      entries.set(ruleSet, { lease: undefined, toGiveBack: [], askedAtMs: undefined, arrivals: 1, sinceMs: nowMs });
      return undefined;
    }
    if (entries && entries.size > 1) {
      entries.delete(ruleSet);
      entries.set(ruleSet, entry);
    }
    entry.arrivals++;
    return entry.lease && spendFrom(entry, entry.lease, nowMs);
  }

  /**
   * Admits one request of the rule set from its lease, if the lease lasts at `nowMs` and has a request left:
   * the decision, and the lease to `unspend` should another object deny the request. A lease that cannot
   * cover it has ended here, and is given back with the next call.
   */
  spend(object: string, ruleSet: string, nowMs: number): SpentFromLease | undefined {
    const entry = this.entry(object, ruleSet);
    return entry?.lease && spendFrom(entry, entry.lease, nowMs);
  }

  /**
   * Undoes one `spend` of a request another object then denied: exact, since nobody saw it admitted. Once the
   * lease has been given back the request stays spent, which can only under-admit.
   */
  unspend(lease: HeldLease): void {
    if (lease.givenBack) return;
    lease.unspent++;
    // The earliest spend is the one taken back: the spends left are then each told no earlier than made.
    const first = lease.spends[0];
    if (first && --first[1] === 0) lease.spends.shift();
  }

  /** Notes that a request spent from `lease` waits on other parts' decisions: see `settleSpend`. */
  holdSpend(lease: HeldLease): void {
    lease.pending++;
  }

  /**
   * Settles a spend `holdSpend` noted once its request is decided: kept when every part admitted it, else undone
   * (`unspend`). The lease may then go back to its object.
   */
  settleSpend(lease: HeldLease, undone: boolean): void {
    lease.pending--;
    if (undone) this.unspend(lease);
    if (lease.pending === 0 && lease.onSettled) {
      const settled = lease.onSettled;
      lease.onSettled = undefined;
      settled();
    }
  }

  /** Resolves once no spend of `lease` waits on another part's decision, so that it can go back whole. */
  settled(lease: HeldLease): Promise<void> {
    if (lease.pending <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const before = lease.onSettled;
      lease.onSettled = () => {
        before?.();
        resolve();
      };
    });
  }

  /**
   * What a call carrying `requestsInCall` requests of the rule set sends with them: the leases to give back,
   * and an ask for a new lease when the rule set is hot and none is being asked for already. An ask still
   * unanswered after `askTimeoutMs` is taken for lost (its call's request died with it).
   */
  termsFor(object: string, ruleSet: string, requestsInCall: number, lifetimeMs: number, nowMs: number, askTimeoutMs: number): LeaseTerms {
    const entry = this.entry(object, ruleSet);
    if (!entry) return {};
    const terms: LeaseTerms = {};
    const givenBack = takeGiveBacks(entry);
    if (givenBack) terms.givenBack = givenBack;
    const asking = entry.askedAtMs !== undefined && nowMs - entry.askedAtMs <= askTimeoutMs;
    if (asking || entry.lease !== undefined) return terms;
    // The requests a lease would see in its lifetime at the rate of those since the last ask.
    const elapsedMs = Math.max(MIN_RATE_WINDOW_MS, nowMs - entry.sinceMs);
    const requests = Math.min(MAX_LEASE_REQUESTS, Math.ceil((entry.arrivals * lifetimeMs) / elapsedMs));
    // Hot: requests queued behind a call in flight, or a rate (of two requests at least) that would spend a lease of two.
    if (requestsInCall < 2 && (entry.arrivals < 2 || requests < 2)) return terms;
    terms.ask = { requests: Math.max(2, requests), lifetimeMs };
    entry.askedAtMs = nowMs;
    entry.arrivals = 0;
    entry.sinceMs = nowMs;
    return terms;
  }

  /**
   * Takes up the answer to a call that asked for a lease: the grant, if any, held from `sentAtMs` until a margin
   * before it ends at the object (a tenth of its lifetime, at least `MIN_LEASE_MARGIN_MS`). Returns the lease held,
   * so that the caller can give it back when its time is up (`endNow`) if no request of the rule set carries it
   * back first.
   */
  takeGrant(
    object: string,
    ruleSet: string,
    grant: LeaseGrant | undefined,
    verdicts: readonly RuleVerdict[],
    costs: readonly number[],
    sentAtMs: number,
  ): HeldLease | undefined {
    const entry = this.entry(object, ruleSet);
    if (!entry) return undefined;
    entry.askedAtMs = undefined;
    if (!grant) return undefined;
    if (entry.lease) end(entry, entry.lease);
    const endsAtMs = sentAtMs + grant.lifetimeMs - Math.max(MIN_LEASE_MARGIN_MS, Math.ceil(grant.lifetimeMs / 10));
    entry.lease = {
      id: grant.id,
      granted: grant.requests,
      unspent: grant.requests,
      givenBack: false,
      endsAtMs,
      sentAtMs,
      spends: [],
      pending: 0,
      verdicts,
      costs,
    };
    return entry.lease;
  }

  /**
   * Ends `lease` here, when its time is up, and says what to give back to its object now, that lease included, with
   * the requests it did not spend; undefined when a request of the rule set already took it back. Its object holds
   * a lease's units for as long again after the isolate stops spending it (see `object/lease-ledger.ts`), so a
   * give-back sent now arrives in time, and nothing is stranded when the rule set's traffic pauses. Ending it a
   * moment early only gives back sooner what it did not spend.
   */
  endNow(object: string, ruleSet: string, lease: HeldLease): LeaseReturn[] | undefined {
    const entry = this.entry(object, ruleSet);
    if (!entry) return undefined;
    if (entry.lease === lease) end(entry, lease);
    return takeGiveBacks(entry);
  }

  /** A call that asked for a lease failed: the next one may ask again. */
  askFailed(object: string, ruleSet: string): void {
    const entry = this.entry(object, ruleSet);
    if (entry) entry.askedAtMs = undefined;
  }
}

/** A request admitted from a lease, and the lease, to undo the spend should another object deny the request. */
export interface SpentFromLease {
  decision: Decision;
  lease: HeldLease;
}

function spendFrom(entry: Entry, lease: HeldLease, nowMs: number): SpentFromLease | undefined {
  if (lease.unspent < 1 || nowMs >= lease.endsAtMs) {
    end(entry, lease);
    return undefined;
  }
  lease.unspent--;
  recordSpend(lease, Math.max(0, nowMs - lease.sentAtMs));
  return { decision: { allowed: true, rules: verdictsOf(lease), leased: true }, lease };
}

/** Notes one request spent `afterMs` after the lease's request was sent (see `HeldLease.spends`). */
function recordSpend(lease: HeldLease, afterMs: number): void {
  const { spends } = lease;
  const last = spends[spends.length - 1];
  // Date.now() stands still between I/O: spends of one turn share their moment.
  if (last && last[0] >= afterMs) last[1]++;
  else spends.push([afterMs, 1]);
  if (spends.length > MAX_SPEND_TIMES) {
    const [oldest, next] = spends as [[number, number], [number, number]];
    next[1] += oldest[1];
    spends.shift();
  }
}

/**
 * The leases that ended here and have not gone back to their object, marked as gone back; undefined when none. One
 * with a spend still to be settled (`holdSpend`) stays to go back with a later call, or from `endNow` once settled.
 */
function takeGiveBacks(entry: Entry): LeaseReturn[] | undefined {
  const ready = entry.toGiveBack.filter((lease) => lease.pending <= 0);
  if (ready.length === 0) return undefined;
  const givenBack = ready.map((lease) => ({
    id: lease.id,
    unspentRequests: Math.max(0, lease.unspent),
    ...(lease.spends.length > 0 ? { spent: lease.spends } : {}),
  }));
  for (const lease of ready) lease.givenBack = true;
  entry.toGiveBack = ready.length === entry.toGiveBack.length ? [] : entry.toGiveBack.filter((lease) => lease.pending > 0);
  return givenBack;
}

/** Nothing more is spent from the lease; it goes back to its object with the next call, or from `endNow`. */
function end(entry: Entry, lease: HeldLease): void {
  entry.lease = undefined;
  entry.toGiveBack.push(lease);
}

/**
 * The verdicts of a request admitted from a lease, for its headers: each rule's `remaining` as the object counted
 * it when it granted the lease, less what has been spent of the lease since; `t` as the object said then. An
 * estimate that ignores refill and other isolates' spending, and never promises more than the object had.
 */
function verdictsOf(lease: HeldLease): RuleVerdict[] {
  const spent = lease.granted - lease.unspent;
  return lease.verdicts.map((verdict, index) => ({
    ...verdict,
    remaining: Math.max(0, verdict.remaining - spent * (lease.costs[index] ?? 0)),
  }));
}
