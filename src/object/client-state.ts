import { algorithmFor } from "../limiter/registry.ts";
import { type Reservation, reserveAhead, spendReserved } from "../limiter/reservation.ts";
import { withLimits } from "../policy/limits.ts";
import { type Bucket, freshBucket, hasSameLimits, limitsOf, rescaledBucket } from "./bucket.ts";
import { LeaseLedger, type OutstandingLease } from "./lease-ledger.ts";
import { PenaltyBox, type StoredPenalties } from "./penalty-box.ts";
import type {
  ClientReport,
  DecisionRequest,
  HoldSettlement,
  LeaseAsk,
  LeaseGrant,
  LeaseReturn,
  ObjectDecision,
  ObjectRule,
  Override,
  RuleVerdict,
} from "./protocol.ts";
import { RefundJournal } from "./refund-journal.ts";
import { blockedVerdict, blocksOf, NO_STRIKE, strikeDenial } from "./rule-blocks.ts";

/** Everything a client's object persists, as one row. */
export interface StoredClient {
  buckets: Record<string, Bucket>;
  idleRetentionSeconds: number;
  override?: Override;
  /** Leases granted and not yet ended, by id. */
  leases?: Record<string, OutstandingLease>;
  /** Blocks in force, and the penalty ladders' memory of the latest ones. */
  penalties?: StoredPenalties;
}

/** One decision made in memory, and whether its reply must wait for a write. */
export interface DecisionMade {
  result: ObjectDecision;
  /** False when it denied, or when the stored state already covers it (every charge spent from a reservation). */
  needsWrite: boolean;
}

/**
 * One client's rate-limit state: a bucket per rule, the override, the units reserved in
 * the stored state and the refund journal. Pure: the object around it owns storage, the
 * clock and the alarm, and passes `nowMs` in, so it is testable without workerd.
 */
export class ClientState {
  private buckets = new Map<string, Bucket>();
  /** Per rule: units the stored state has charged in advance and memory has not spent yet (see `limiter/reservation.ts`). */
  private readonly reservations = new Map<string, Reservation>();
  /** Whether the policy lets writes reserve units (the latest request says). */
  private reserving = true;
  private override: Override | undefined;
  private readonly journal = new RefundJournal();
  private leases = new LeaseLedger();
  private penalties = new PenaltyBox();
  /** How long a client whose buckets are full again is kept before cleanup (the latest request says). */
  private idleRetentionSeconds = 0;

  /** The state as stored, or a new client's. */
  constructor(stored?: StoredClient) {
    if (!stored) return;
    this.buckets = new Map(Object.entries(stored.buckets));
    this.idleRetentionSeconds = stored.idleRetentionSeconds;
    this.override = stored.override;
    this.leases = new LeaseLedger(stored.leases);
    this.penalties = new PenaltyBox(stored.penalties);
  }

  /** Whether there is nothing to store: no bucket, no override and no block. */
  get isEmpty(): boolean {
    return this.buckets.size === 0 && this.override === undefined && this.penalties.toStored() === undefined;
  }

  /**
   * Decides one request against every given rule at once. It is admitted only if
   * every enforcing rule admits it; then the enforcing rules are charged, and each
   * shadow rule that would admit it. A denial charges nothing and changes nothing.
   */
  decide(request: DecisionRequest, nowMs: number): DecisionMade {
    this.settleLeases(request.givenBack, nowMs);
    if (request.confirmed) this.journal.confirm(request.confirmed, nowMs);
    const effective = this.effectiveRules(request, nowMs);
    const verdictOutcomes = this.outcomesOf(effective, nowMs);
    // Most clients have never been blocked: their decisions read no penalty box.
    const blocks = this.penalties.isEmpty ? undefined : blocksOf(this.penalties, effective, nowMs);
    const allowed = verdictOutcomes.every(
      ({ rule, outcome }) => rule.mode === "shadow" || (outcome.decision.allowed && blocks?.has(rule.name) !== true),
    );
    // A denial is a strike for each rule that denied it with a ladder; a block it starts must be stored.
    const struck = allowed
      ? NO_STRIKE
      : strikeDenial(this.penalties, verdictOutcomes, blocks, (rule) => this.leases.heldUnits(rule), nowMs);
    const blockStarted = struck.blockStarted;
    const blocked = blockStarted ? blocksOf(this.penalties, effective, nowMs) : blocks;
    // A lease is granted before the request is charged, on no more than half of what is left (`LeaseLedger.grant`),
    // so the request still fits; a provisional charge made after it is then refunded exactly, the lease staying
    // granted. The verdicts count the lease's requests as left, which they are, in the bucket the lease and the
    // object make.
    // A held admission asks for no lease: its isolate must not admit the rule set's requests without a hold each.
    const lease = allowed && request.lease && !request.hold ? this.grantLease(verdictOutcomes, effective, request.lease, nowMs) : undefined;
    const outcomes = lease ? this.outcomesOf(effective, nowMs) : verdictOutcomes;

    const rules: RuleVerdict[] = verdictOutcomes.map(({ rule, bucket, outcome }) => {
      const blockedUntilMs = blocked?.get(rule.name);
      if (blockedUntilMs !== undefined) return blockedVerdict(rule, blockedUntilMs, outcome.decision, nowMs);
      // A rule that would admit a request another rule denies reports its uncharged state.
      const decision =
        allowed || !outcome.decision.allowed
          ? outcome.decision
          : algorithmFor(rule.algorithm).decide(bucket.state, bucket.limits, nowMs, 0).decision;
      return { ...decision, name: rule.name, periodSeconds: rule.periodSeconds, mode: rule.mode };
    });
    if (!allowed) {
      // Another request's charge may still be refunded, a hold settled or a lease's unspent units given back, and admit
      // this one sooner than its rules' waits say; and a strike towards a block must reach the object each time. Such
      // a denial is not cached.
      const refundsPending =
        struck.counted ||
        this.journal.hasRefundable(nowMs) ||
        verdictOutcomes.some(({ rule, outcome }) => !outcome.decision.allowed && this.leases.lentUnits(rule.name) > 0);
      return { result: { allowed, rules, ...(refundsPending ? { refundsPending } : {}) }, needsWrite: blockStarted };
    }

    // Admitted, every rule is charged unless a shadow rule would have denied it.
    const charged = outcomes.every(({ outcome }) => outcome.decision.allowed)
      ? outcomes
      : outcomes.filter(({ outcome }) => outcome.decision.allowed);
    if (charged.length === 0) return { result: { allowed, rules }, needsWrite: false };
    // A held charge is undone by settling its hold, never by a refund too: it is never provisional.
    const chargeId = request.provisional && !request.hold ? crypto.randomUUID() : undefined;
    // Only while a charge may still be refunded does the journal need each bucket as it was before this one.
    if (chargeId !== undefined || this.journal.isActive) {
      this.journal.trim(nowMs);
      const charges = charged.map(({ rule }) => ({ rule: rule.name, cost: rule.cost }));
      this.journal.record(
        { id: chargeId ?? "", atMs: nowMs, charges, provisional: chargeId !== undefined, ...this.leases.lentBefore(charges) },
        new Map(charged.map(({ rule, bucket }) => [rule.name, bucket])),
      );
    }
    let needsWrite = this.idleRetentionSeconds !== request.idleRetentionSeconds;
    this.reserving = request.reservations !== false;
    if (!this.reserving) this.reservations.clear();
    for (const { rule, bucket, outcome } of charged) {
      this.buckets.set(rule.name, { ...bucket, state: outcome.state });
      if (!spendReserved(this.reservations.get(rule.name), rule.cost, nowMs)) needsWrite = true;
    }
    this.idleRetentionSeconds = request.idleRetentionSeconds;
    const holdId = request.hold
      ? this.leases.hold(
          charged.map(({ rule }) => ({ rule: rule.name, cost: rule.cost, count: rule.count, resetOnSuccess: rule.resetOnSuccess })),
          nowMs,
          request.hold.ttlMs,
        )
      : undefined;
    const result: ObjectDecision = {
      allowed,
      rules,
      ...(chargeId === undefined ? {} : { chargeId }),
      ...(lease ? { lease } : {}),
      ...(holdId === undefined ? {} : { holdId }),
    };
    // A lease or a hold is charged and must be stored before the isolate may spend it or the response settle it
    // (invariants 3 and 7).
    return { result, needsWrite: needsWrite || lease !== undefined || holdId !== undefined };
  }

  /** Blocks every rule of the client until `untilMs` (an operator's block, `limiter.block`). */
  block(untilMs: number): void {
    this.penalties.blockClient(untilMs);
  }

  /** Lifts every block of the client, the operator's and the rules', their ladders starting again at the bottom. */
  unblock(): void {
    this.penalties.lift();
  }

  /** Each rule's bucket and its outcome for one more request at `nowMs`, nothing changed yet. */
  private outcomesOf(rules: readonly ObjectRule[], nowMs: number) {
    return rules.map((rule) => {
      const bucket = this.bucketFor(rule, nowMs);
      return { rule, bucket, outcome: algorithmFor(rule.algorithm).decide(bucket.state, bucket.limits, nowMs, rule.cost) };
    });
  }

  /** Grants a lease on the buckets as they are before the request's own charge. */
  private grantLease(
    outcomes: ReturnType<ClientState["outcomesOf"]>,
    rules: readonly ObjectRule[],
    ask: LeaseAsk,
    nowMs: number,
  ): LeaseGrant | undefined {
    for (const { rule, bucket } of outcomes) this.buckets.set(rule.name, bucket);
    return this.leases.grant(this.buckets, rules, ask, nowMs, this.journal);
  }

  /**
   * Brings the leases to `nowMs` (expiries, then what the request gives back) before anything is decided.
   * None of it needs a write of its own: stored again after a restart, the leases end the same way, and a
   * give-back lost with memory only leaves its units with the lease until it expires. While a charge may still
   * be refunded, the ledger records each lease event in the refund journal, so that the refund replays it.
   */
  private settleLeases(givenBack: readonly LeaseReturn[] | undefined, nowMs: number): void {
    this.leases.settle(this.buckets, nowMs, this.journal);
    for (const given of givenBack ?? []) this.leases.giveBack(this.buckets, given, nowMs, this.journal);
  }

  /** Ends leases an isolate gives back on their own, when it stopped spending them with no request to carry them. */
  giveBack(givenBack: readonly LeaseReturn[], nowMs: number): void {
    this.settleLeases(givenBack, nowMs);
  }

  /**
   * Settles a held admission (see `LeaseLedger.settleHold`); false when its hold has ended already, settled before
   * or expired, when it stands as charged.
   */
  settleHold(holdId: string, settlement: HoldSettlement, nowMs: number): boolean {
    this.leases.settle(this.buckets, nowMs, this.journal);
    const settled = this.leases.settleHold(this.buckets, holdId, settlement, nowMs, this.journal);
    if (settled && settled.resets.length > 0) this.reset(nowMs, settled.resets);
    return settled !== undefined;
  }

  /**
   * Undoes a provisional charge exactly, as if it had never been made (see
   * RefundJournal). Returns false, keeping the charge, when that is not possible.
   */
  refund(chargeId: string, nowMs: number): boolean {
    const buckets = this.journal.refund(chargeId, nowMs);
    if (!buckets) return false;
    for (const [name, bucket] of buckets) this.buckets.set(name, bucket);
    return true;
  }

  /** The client's state for every given rule, consuming nothing. */
  inspect(request: Pick<DecisionRequest, "rules" | "tier">, nowMs: number): ClientReport {
    this.leases.settle(this.buckets, nowMs, this.journal);
    const rules = this.effectiveRules(request, nowMs).map((rule) => {
      const bucket = this.bucketFor(rule, nowMs);
      const { decision } = algorithmFor(rule.algorithm).decide(bucket.state, bucket.limits, nowMs, 0);
      return {
        ...decision,
        name: rule.name,
        periodSeconds: rule.periodSeconds,
        mode: rule.mode,
        algorithm: rule.algorithm,
        burst: rule.burst,
        leased: this.leases.lentUnits(rule.name) - this.leases.heldUnits(rule.name),
        held: this.leases.heldUnits(rule.name),
      };
    });
    const override = this.activeOverride(nowMs) ?? null;
    const { blockedUntilMs, rules: blockedRules } = this.penalties.blocksAt(nowMs);
    return { tier: override?.tier ?? request.tier ?? null, override, rules, blockedUntilMs, blockedRules };
  }

  /**
   * Every bucket full again (or those of the rules named), as for a new client, less what leases still hold of it:
   * isolates may still spend that, and give back what they do not. The override stays.
   */
  reset(nowMs: number, ruleNames?: readonly string[]): void {
    for (const [name, bucket] of this.buckets) {
      if (ruleNames !== undefined && !ruleNames.includes(name)) continue;
      if (this.leases.lentUnits(name) === 0) this.buckets.delete(name);
      else this.buckets.set(name, freshBucket(bucket.algorithm, bucket.limits, nowMs, this.leases.lentUnits(name)));
    }
    this.reservations.clear();
    this.journal.clear();
  }

  /** Everything forgotten, the override too, for when cleanup deletes the client's storage. */
  forget(): void {
    this.leases = new LeaseLedger();
    this.penalties = new PenaltyBox();
    this.buckets.clear();
    this.reservations.clear();
    this.journal.clear();
    this.override = undefined;
  }

  /** Replaces the override; undefined removes it. */
  setOverride(override: Override | undefined): void {
    this.override = override;
  }

  /** Whether the state is equivalent to a new client's: every bucket full, no lease outstanding, no override in force. */
  isLikeNew(nowMs: number): boolean {
    this.leases.settle(this.buckets, nowMs, this.journal);
    const penalized = this.penalties.trim(nowMs);
    return this.leases.isEmpty && !penalized && this.fullAtMs() <= nowMs && !this.activeOverride(nowMs);
  }

  /** Whether an override without an expiry is in force: it keeps the client until it is removed. */
  isKeptUntilRemoved(nowMs: number): boolean {
    const override = this.activeOverride(nowMs);
    return override !== undefined && override.expiresAt === undefined;
  }

  /** When cleanup should look at this client: once every bucket is full and any override has expired, plus the idle retention. */
  cleanupAtMs(): number {
    const latest = Math.max(this.fullAtMs(), this.override?.expiresAt ?? 0, this.leases.latestExpiryMs, this.penalties.keepUntilMs());
    return latest + this.idleRetentionSeconds * 1000;
  }

  /**
   * The state to store now. Each bucket is stored with a fresh reservation charged in advance
   * (unless the policy turns reservations off): until it is spent, admissions need no write.
   */
  toStored(nowMs: number): StoredClient {
    const penalties = this.penalties.toStored();
    const buckets: Record<string, Bucket> = {};
    for (const [name, bucket] of this.buckets) {
      const { stored, reservation } = this.reserving
        ? reserveAhead(algorithmFor(bucket.algorithm), bucket.state, bucket.limits, nowMs)
        : { stored: bucket.state, reservation: undefined };
      buckets[name] = stored === bucket.state ? bucket : { ...bucket, state: stored };
      if (reservation) this.reservations.set(name, reservation);
      else this.reservations.delete(name);
    }
    return {
      buckets,
      idleRetentionSeconds: this.idleRetentionSeconds,
      ...(this.override ? { override: this.override } : {}),
      ...(this.leases.isEmpty ? {} : { leases: this.leases.toStored() }),
      ...(penalties ? { penalties } : {}),
    };
  }

  /** The override, unless it has expired. */
  private activeOverride(nowMs: number): Override | undefined {
    const override = this.override;
    return override && (override.expiresAt === undefined || override.expiresAt > nowMs) ? override : undefined;
  }

  /** The rules with the tier in force (the override's, else the client's) and the override's own limits applied. */
  private effectiveRules(request: Pick<DecisionRequest, "rules" | "tier">, nowMs: number): readonly ObjectRule[] {
    const override = this.activeOverride(nowMs);
    const tier = override?.tier ?? request.tier;
    // Most clients have neither: their rules are the ones sent, as they are.
    if (tier === undefined && override?.rules === undefined) return request.rules;
    return request.rules.map((rule) => {
      // Own properties only: a tier or rule named like an object's built-in (`toString`) must find nothing.
      const tierLimits = tier !== undefined && rule.tiers && Object.hasOwn(rule.tiers, tier) ? rule.tiers[tier] : undefined;
      const tiered = tierLimits ? withLimits(rule, tierLimits) : rule;
      const own = override?.rules && Object.hasOwn(override.rules, rule.name) ? override.rules[rule.name] : undefined;
      return own ? withLimits(tiered, own) : tiered;
    });
  }

  /**
   * The bucket of a rule under the limits it is sent with. When they changed, the bucket is rescaled to them, what
   * the client spent carrying over in full (which ends its reservation), and kept so in memory at once: rescaling
   * forgets nothing, so the bucket refills at the new rate from now even if the request is denied, which writes
   * nothing. A new rule's bucket starts full less what leases still hold of it, so that a reset never gives back
   * what isolates may still spend.
   */
  private bucketFor(rule: ObjectRule, nowMs: number): Bucket {
    const existing = this.buckets.get(rule.name);
    if (existing && hasSameLimits(existing, rule)) return existing;
    this.reservations.delete(rule.name);
    if (!existing) return freshBucket(rule.algorithm, limitsOf(rule), nowMs, this.leases.lentUnits(rule.name));
    // The journal replays each bucket under the limits of its base: across a change of limits that replay would
    // refill at the old rate. Refunds pending across the change are refused instead, keeping their charges.
    this.journal.clear();
    const rescaled = rescaledBucket(existing, rule, nowMs);
    this.buckets.set(rule.name, rescaled);
    return rescaled;
  }

  /** Epoch ms at which every bucket is full again. */
  private fullAtMs(): number {
    let latest = 0;
    for (const bucket of this.buckets.values()) {
      latest = Math.max(latest, algorithmFor(bucket.algorithm).fullAtMs(bucket.state, bucket.limits));
    }
    return latest;
  }
}
