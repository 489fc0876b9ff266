import { DurableObject } from "cloudflare:workers";
import { algorithmFor } from "../limiter/registry.ts";
import { type Reservation, reserveAhead, spendReserved } from "../limiter/reservation.ts";
import type { RuleLimits } from "../limiter/types.ts";
import { applyTier, type Policy, type Rule, type TierLimits } from "../policy/schema.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import type { Decision, RuleVerdict } from "./protocol.ts";
import { type Bucket, RefundJournal } from "./refund-journal.ts";

/** The rules that apply to a request, before the client's tier and override are applied. */
export interface RuleSet {
  rules: Rule[];
  /** The client's tier from the static `clients` mapping. */
  tier?: string | undefined;
  /** The policy's tiers, at least those an override may name. */
  tiers?: Record<string, Record<string, TierLimits>> | undefined;
}

/** What the Worker sends with each request: the rules that apply and the cleanup setting. */
export interface CheckOptions extends RuleSet, Pick<Policy, "idleRetentionSeconds"> {
  /** Set when another object still has to decide the request, so this charge may be refunded. */
  provisional?: boolean;
  /** How long admitted decisions wait to be written together (see `commitLater`). @default 0 */
  groupCommitMs?: number;
  /** Whether writes store units charged in advance for later admissions (see `reservation.ts`). @default true */
  reservations?: boolean;
}

/** Counters of what the objects of this isolate did, for the benchmark's cost figures. */
export const storageCounters = { calls: 0, checks: 0, rowsWritten: 0, alarmsSet: 0, flushes: 0 };

/** Limits an operator set for one client through the admin API. */
export interface Override {
  /** Replaces the client's tier. */
  tier?: string | undefined;
  /** Replaces limits of single rules, on top of the tier. */
  rules?: Record<string, TierLimits> | undefined;
  /** Epoch ms after which the override no longer applies; absent: until removed. */
  expiresAt?: number | undefined;
}

/** What the admin API shows of a client. */
export interface ClientState {
  /** The tier in effect: the override's, else the static one, else null. */
  tier: string | null;
  override: Override | null;
  rules: Array<RuleVerdict & { algorithm: Rule["algorithm"]; burst: number }>;
}

/** A decision, plus the id to refund its charge with when it was provisional. */
export interface CheckResult extends Decision {
  chargeId?: string;
}

/** Everything a client's object persists, as one row. */
interface StoredClient {
  buckets: Record<string, Bucket>;
  idleRetentionSeconds: number;
  override?: Override;
}

/** The one key under which a client's state is stored. */
export const STATE_KEY = "client";

function limitsOf(rule: Rule): RuleLimits {
  return { limit: rule.limit, periodSeconds: rule.periodSeconds, burst: rule.burst };
}

function hasSameLimits(bucket: Bucket, rule: Rule): boolean {
  return (
    bucket.algorithm === rule.algorithm &&
    bucket.limits.limit === rule.limit &&
    bucket.limits.periodSeconds === rule.periodSeconds &&
    bucket.limits.burst === rule.burst
  );
}

/**
 * One client's rate-limit state (or, under the name "global", the state shared by
 * all clients). Every request goes through this one single-threaded object, so each
 * decision is atomic without locks.
 */
export class RateLimiter extends DurableObject<Env> {
  /** The client's clock. Only tests replace it, through `runInDurableObject`. */
  clock: Clock = systemClock;

  private buckets = new Map<string, Bucket>();
  /** Per rule: units the stored state has charged in advance and memory has not spent yet (see `reservation.ts`). */
  private readonly reservations = new Map<string, Reservation>();
  /** Whether the policy lets writes reserve units (the latest check says). */
  private reserving = true;
  private idleRetentionSeconds = 0;
  private override: Override | undefined;
  private readonly journal = new RefundJournal();
  /** The latest time this object has seen; see `nowMs()`. */
  private latestNowMs = 0;
  /** When the pending alarm fires, or null when none is set; mirrors storage so requests never read it. */
  private alarmAtMs: number | null = null;
  /** The write that will persist every decision made since the last one; see `commitLater`. */
  private pendingCommit: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Reading state is synchronous. Only a stored client can have a pending alarm (the alarm
    // is set after the state is written and deleted with it), so only then is it read.
    if (this.load()) {
      ctx.blockConcurrencyWhile(async () => {
        this.alarmAtMs = await this.ctx.storage.getAlarm();
      });
    }
  }

  /**
   * Decides one request against every given rule at once. It is admitted only if
   * every enforcing rule admits it; then the enforcing rules are charged, and each
   * shadow rule that would admit it. A denial charges nothing and writes nothing.
   */
  async check(options: CheckOptions): Promise<CheckResult> {
    const [result] = await this.checkMany([options]);
    if (!result) throw new Error("checkMany answered no result for one check");
    return result;
  }

  /**
   * Decides several requests, in order, exactly as if each had been sent to `check`
   * on its own, and replies once they are all persisted: one call and one write for
   * a Worker's concurrent requests of this client (see `object-client/call-batcher.ts`).
   */
  async checkMany(batch: CheckOptions[]): Promise<CheckResult[]> {
    storageCounters.calls++;
    let needsWrite = false;
    const results = batch.map((options) => {
      const decided = this.decide(options);
      needsWrite ||= decided.needsWrite;
      return decided.result;
    });
    if (needsWrite) await this.commitLater(batch[0]?.groupCommitMs ?? 0);
    return results;
  }

  /**
   * One decision, made and applied in memory. `needsWrite` says whether its reply must
   * wait for a write: not when it denied, nor when the stored state already covers it
   * (every charge spent from a reservation).
   */
  private decide(options: CheckOptions): { result: CheckResult; needsWrite: boolean } {
    storageCounters.checks++;
    const nowMs = this.nowMs();
    const outcomes = this.effectiveRules(options, nowMs).map((rule) => {
      const bucket = this.bucketFor(rule, nowMs);
      return { rule, bucket, outcome: algorithmFor(rule.algorithm).decide(bucket.state, bucket.limits, nowMs, rule.cost) };
    });
    const allowed = outcomes.every(({ rule, outcome }) => rule.mode === "shadow" || outcome.decision.allowed);

    const rules: RuleVerdict[] = outcomes.map(({ rule, bucket, outcome }) => {
      // A rule that would admit a request another rule denies reports its uncharged state.
      const decision =
        allowed || !outcome.decision.allowed
          ? outcome.decision
          : algorithmFor(rule.algorithm).decide(bucket.state, bucket.limits, nowMs, 0).decision;
      return { ...decision, name: rule.name, periodSeconds: rule.periodSeconds, mode: rule.mode };
    });
    if (!allowed) return { result: { allowed, rules }, needsWrite: false };

    // Admitted, every rule is charged unless a shadow rule would have denied it.
    const charged = outcomes.every(({ outcome }) => outcome.decision.allowed)
      ? outcomes
      : outcomes.filter(({ outcome }) => outcome.decision.allowed);
    if (charged.length === 0) return { result: { allowed, rules }, needsWrite: false };
    const chargeId = options.provisional ? crypto.randomUUID() : undefined;
    // Only while a charge may still be refunded does the journal need each bucket as it was before this one.
    if (chargeId !== undefined || this.journal.isActive) {
      this.journal.trim(nowMs);
      this.journal.record(
        {
          id: chargeId ?? "",
          atMs: nowMs,
          charges: charged.map(({ rule }) => ({ rule: rule.name, cost: rule.cost })),
          provisional: chargeId !== undefined,
        },
        new Map(charged.map(({ rule, bucket }) => [rule.name, bucket])),
      );
    }
    let needsWrite = this.idleRetentionSeconds !== options.idleRetentionSeconds;
    this.reserving = options.reservations !== false;
    if (!this.reserving) this.reservations.clear();
    for (const { rule, bucket, outcome } of charged) {
      this.buckets.set(rule.name, { ...bucket, state: outcome.state });
      if (!spendReserved(this.reservations.get(rule.name), rule.cost, nowMs)) needsWrite = true;
    }
    this.idleRetentionSeconds = options.idleRetentionSeconds;
    const result = chargeId === undefined ? { allowed, rules } : { allowed, rules, chargeId };
    return { result, needsWrite };
  }

  /**
   * Undoes a provisional charge exactly, as if it had never been made (see
   * RefundJournal). Returns false, keeping the charge, when that is not possible.
   */
  async refund(chargeId: string): Promise<boolean> {
    const buckets = this.journal.refund(chargeId, this.nowMs());
    if (!buckets) return false;
    for (const [name, bucket] of buckets) this.buckets.set(name, bucket);
    await this.commitLater(0);
    return true;
  }

  /** The client's state for every given rule, consuming nothing and writing nothing. */
  inspect(ruleSet: RuleSet): ClientState {
    const nowMs = this.nowMs();
    const rules = this.effectiveRules(ruleSet, nowMs).map((rule) => {
      const bucket = this.bucketFor(rule, nowMs);
      const { decision } = algorithmFor(rule.algorithm).decide(bucket.state, bucket.limits, nowMs, 0);
      return {
        ...decision,
        name: rule.name,
        periodSeconds: rule.periodSeconds,
        mode: rule.mode,
        algorithm: rule.algorithm,
        burst: rule.burst,
      };
    });
    const override = this.activeOverride(nowMs) ?? null;
    return { tier: override?.tier ?? ruleSet.tier ?? null, override, rules };
  }

  /** Starts the client afresh: every bucket full again. An override stays. */
  async reset(): Promise<void> {
    this.buckets.clear();
    this.reservations.clear();
    this.journal.clear();
    await this.saveOrDelete();
  }

  /** Stores an override; it applies from the client's very next request. */
  async setOverride(override: Override): Promise<void> {
    this.override = override;
    await this.saveOrDelete();
    if (override.expiresAt !== undefined) this.scheduleCleanup();
  }

  /** Removes the client's override, if any. */
  async clearOverride(): Promise<void> {
    this.override = undefined;
    await this.saveOrDelete();
  }

  /**
   * Cleanup: a client whose buckets are all full again, with no override in force,
   * is deleted; one still refilling, or with an override, is checked again later.
   */
  async alarm(): Promise<void> {
    // Decisions waiting to be written are part of the state being judged: write them first.
    if (this.pendingCommit) await this.pendingCommit;
    this.alarmAtMs = null;
    const nowMs = this.nowMs();
    const override = this.activeOverride(nowMs);
    if (this.fullAtMs() <= nowMs && !override) {
      // A full bucket is indistinguishable from a new client, so deleting it never changes a decision.
      this.buckets.clear();
      this.reservations.clear();
      this.journal.clear();
      this.override = undefined;
      await this.deleteEverything();
      return;
    }
    // A permanent override keeps the client until it is removed: nothing to check before then.
    if (!override || override.expiresAt !== undefined) this.scheduleCleanup();
  }

  /** The override, unless it has expired. */
  private activeOverride(nowMs: number): Override | undefined {
    const override = this.override;
    return override && (override.expiresAt === undefined || override.expiresAt > nowMs) ? override : undefined;
  }

  /** The rules with the client's tier (the override's, else the static one) and the override's own limits applied. */
  private effectiveRules(ruleSet: RuleSet, nowMs: number): readonly Rule[] {
    const override = this.activeOverride(nowMs);
    const tierName = override?.tier ?? ruleSet.tier;
    const tier = tierName === undefined ? undefined : ruleSet.tiers?.[tierName];
    // Most clients have neither: their rules are the ones sent, as they are.
    if (tier === undefined && override?.rules === undefined) return ruleSet.rules;
    return ruleSet.rules.map((rule) => {
      const tierLimits = tier?.[rule.name];
      const tiered = tierLimits ? applyTier(rule, tierLimits) : rule;
      const own = override?.rules?.[rule.name];
      return own ? applyTier(tiered, own) : tiered;
    });
  }

  /** Persists what is left, or deletes the object's storage when nothing is. */
  private async saveOrDelete(): Promise<void> {
    if (this.buckets.size === 0 && this.override === undefined) {
      await this.deleteEverything();
      return;
    }
    this.persist();
  }

  /** Deletes the client's storage. Since compatibility date 2026-02-24, `deleteAll()` deletes the alarm too. */
  private async deleteEverything(): Promise<void> {
    this.alarmAtMs = null;
    await this.ctx.storage.deleteAll();
  }

  /**
   * The clock, made non-decreasing. A denial writes nothing, so the time it saw is not
   * in the stored state; if a later request saw an earlier time, the interval between
   * would be refilled twice. Taking the latest time seen rules that out.
   */
  private nowMs(): number {
    this.latestNowMs = Math.max(this.latestNowMs, this.clock.nowMs());
    return this.latestNowMs;
  }

  /** The bucket of a rule, new when the rule is new or its limits changed (which ends its reservation). */
  private bucketFor(rule: Rule, nowMs: number): Bucket {
    const existing = this.buckets.get(rule.name);
    if (existing && hasSameLimits(existing, rule)) return existing;
    this.reservations.delete(rule.name);
    const limits = limitsOf(rule);
    return { algorithm: rule.algorithm, limits, state: algorithmFor(rule.algorithm).initialState(limits, nowMs) };
  }

  /** Epoch ms at which every bucket is full again. */
  private fullAtMs(): number {
    let latest = 0;
    for (const bucket of this.buckets.values()) {
      latest = Math.max(latest, algorithmFor(bucket.algorithm).fullAtMs(bucket.state, bucket.limits));
    }
    return latest;
  }

  /**
   * Sets the cleanup alarm only when none is pending: each `setAlarm` is a billed
   * row write, so a busy client must not set one per request. A pending alarm that
   * fires too early simply reschedules itself.
   */
  private scheduleCleanup(): void {
    if (this.alarmAtMs !== null) return;
    this.alarmAtMs = Math.max(this.fullAtMs(), this.override?.expiresAt ?? 0) + this.idleRetentionSeconds * 1000;
    storageCounters.alarmsSet++;
    void this.ctx.storage.setAlarm(this.alarmAtMs);
  }

  /**
   * Group commit. Decisions are made at once, in memory, so each request sees the
   * ones before it; their state is written once for every decision made within
   * `windowMs`. Each reply waits on the commit, which resolves only after the write
   * is issued, so the output gate then holds the reply until the write is durable
   * (invariant 3): no admission leaves before the state that justified it is stored.
   * If the object dies first, the unwritten decisions die with their unsent replies.
   */
  private commitLater(windowMs: number): Promise<void> {
    if (!this.pendingCommit) {
      this.pendingCommit = new Promise((resolve, reject) => {
        setTimeout(() => {
          this.pendingCommit = null;
          try {
            storageCounters.flushes++;
            this.persist();
            this.scheduleCleanup();
            resolve();
          } catch (error) {
            // The write failed (the object was reset, storage broken): none of these admissions may be answered.
            reject(error);
          }
        }, windowMs);
      });
    }
    return this.pendingCommit;
  }

  /**
   * Writes the client's state as one row. Not awaited: the output gate holds every
   * reply until the write is durable (invariant 3), and SQL writes are synchronous
   * in memory so the next request already sees them.
   */
  private persist(): void {
    // Each bucket is stored with a fresh reservation charged in advance: until it is spent, admissions need no write.
    const nowMs = this.nowMs();
    const buckets: Record<string, Bucket> = {};
    for (const [name, bucket] of this.buckets) {
      const { stored, reservation } = this.reserving
        ? reserveAhead(algorithmFor(bucket.algorithm), bucket.state, bucket.limits, nowMs)
        : { stored: bucket.state, reservation: undefined };
      buckets[name] = stored === bucket.state ? bucket : { ...bucket, state: stored };
      if (reservation) this.reservations.set(name, reservation);
      else this.reservations.delete(name);
    }
    const stored: StoredClient = {
      buckets,
      idleRetentionSeconds: this.idleRetentionSeconds,
      ...(this.override ? { override: this.override } : {}),
    };
    // The synchronous KV API of SQLite-backed objects: one row in its built-in table, no schema to create.
    this.ctx.storage.kv.put(STATE_KEY, stored);
    storageCounters.rowsWritten++;
  }

  /** Loads the stored client, if any; says whether there was one. */
  private load(): boolean {
    const stored = this.ctx.storage.kv.get<StoredClient>(STATE_KEY);
    if (!stored) return false;
    this.buckets = new Map(Object.entries(stored.buckets));
    this.idleRetentionSeconds = stored.idleRetentionSeconds;
    this.override = stored.override;
    return true;
  }
}
