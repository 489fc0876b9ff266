import { DurableObject } from "cloudflare:workers";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { ClientState, type StoredClient } from "./client-state.ts";
import type { ObjectMeter } from "./meter.ts";
import type { ClientReport, DecisionRequest, HoldSettlement, LeaseReturn, ObjectDecision, Override } from "./protocol.ts";

/** The one key under which a client's state is stored. */
export const STATE_KEY = "client";

/**
 * One client's Durable Object (or, under the name "global", the one every client shares
 * for the global rules). Every request of the client goes through this one single-threaded
 * object, so each decision is atomic without locks. The decisions themselves are
 * `ClientState`'s; this shell owns the clock, storage, group commit and the cleanup alarm.
 * @example
 * // Exported from your Worker's entry module and bound as RATE_LIMITER (a new_sqlite_classes migration).
 * export { RateLimiter } from "edge-rate-limiter";
 */
export class RateLimiter extends DurableObject {
  /** The client's clock. Only tests replace it, through `runInDurableObject`. */
  clock: Clock = systemClock;
  /** Counts what this object does. Only tests and the benchmark install one. */
  meter: ObjectMeter | undefined;

  private state: ClientState;
  /** The latest time this object has seen; see `nowMs()`. */
  private latestNowMs = 0;
  /** When the pending alarm fires, or null when none is set; mirrors storage so requests never read it. */
  private alarmAtMs: number | null = null;
  /** The write that will persist every decision made since the last one; see `commitLater`. */
  private pendingCommit: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    // Reading state is synchronous (the KV API of SQLite-backed objects). Only a stored client can have a
    // pending alarm (the alarm is set after the state is written and deleted with it), so only then is it read.
    const stored = ctx.storage.kv.get<StoredClient>(STATE_KEY);
    this.state = new ClientState(stored);
    if (stored) {
      ctx.blockConcurrencyWhile(async () => {
        this.alarmAtMs = await this.ctx.storage.getAlarm();
      });
    }
  }

  /**
   * Decides requests, in order, each against every one of its rules at once (see
   * `ClientState.decide`), and replies once the state that covers them is persisted:
   * one call and one write for a Worker's concurrent requests of this client (see
   * `object-client/call-batcher.ts`). A batch of denials writes nothing.
   */
  async decide(batch: readonly DecisionRequest[]): Promise<ObjectDecision[]> {
    if (this.meter) {
      this.meter.calls++;
      this.meter.decisions += batch.length;
    }
    const nowMs = this.nowMs();
    let needsWrite = false;
    const results = batch.map((request) => {
      const made = this.state.decide(request, nowMs);
      needsWrite ||= made.needsWrite;
      return made.result;
    });
    if (needsWrite) await this.commitLater(batch[0]?.groupCommitMs ?? 0);
    return results;
  }

  /**
   * Ends leases an isolate stopped spending, the requests it did not spend the client's again. Writes nothing:
   * stored again after a restart, a lease given back here only lasts until its expiry (see `ClientState.settleLeases`).
   */
  giveBack(givenBack: readonly LeaseReturn[]): void {
    this.state.giveBack(givenBack, this.nowMs());
  }

  /**
   * Settles a held admission once its response is known: its charges kept at the settled cost, or refunded exactly
   * (see `HoldSettlement`), and written before the reply. False when the hold has ended already (settled, or expired,
   * standing as charged).
   */
  async settle(holdId: string, settlement: HoldSettlement): Promise<boolean> {
    if (!this.state.settleHold(holdId, settlement, this.nowMs())) return false;
    await this.commitLater(0);
    return true;
  }

  /** Undoes a provisional charge exactly; false, keeping the charge, when that is not possible. */
  async refund(chargeId: string): Promise<boolean> {
    if (!this.state.refund(chargeId, this.nowMs())) return false;
    await this.commitLater(0);
    return true;
  }

  /** The client's state for every given rule, consuming nothing and writing nothing. */
  inspect(request: Pick<DecisionRequest, "rules" | "tier">): ClientReport {
    return this.state.inspect(request, this.nowMs());
  }

  /** Starts the client afresh: every bucket full again, or those of the rules named. An override stays. */
  async reset(ruleNames?: readonly string[]): Promise<void> {
    this.state.reset(this.nowMs(), ruleNames);
    await this.saveOrDelete();
  }

  /** Stores an override; it applies from the client's very next request. */
  async setOverride(override: Override): Promise<void> {
    this.state.setOverride(override);
    await this.saveOrDelete();
    if (override.expiresAt !== undefined) this.scheduleCleanup();
  }

  /** Blocks every rule of the client for `seconds` (an operator's block); it is stored before the reply. */
  async block(seconds: number): Promise<void> {
    const nowMs = this.nowMs();
    this.state.block(nowMs + seconds * 1000);
    this.persist();
    this.scheduleCleanup();
  }

  /** Lifts every block of the client, its penalty ladders starting again at the bottom. */
  async unblock(): Promise<void> {
    this.state.unblock();
    await this.saveOrDelete();
  }

  /** Removes the client's override, if any. */
  async clearOverride(): Promise<void> {
    this.state.setOverride(undefined);
    await this.saveOrDelete();
  }

  /**
   * Cleanup: a client whose state is like a new client's (every bucket full, no override
   * in force) is deleted; any other is looked at again later (docs/architecture.md, invariant 4).
   */
  async alarm(): Promise<void> {
    // Decisions waiting to be written are part of the state being judged: write them first.
    if (this.pendingCommit) await this.pendingCommit;
    this.alarmAtMs = null;
    const nowMs = this.nowMs();
    if (this.state.isLikeNew(nowMs)) {
      // Indistinguishable from a new client, so deleting it never changes a decision.
      this.state.forget();
      await this.deleteEverything();
      return;
    }
    // A permanent override keeps the client until it is removed: nothing to look at before then.
    if (!this.state.isKeptUntilRemoved(nowMs)) this.scheduleCleanup();
  }

  /** Persists what is left, or deletes the object's storage when nothing is. */
  private async saveOrDelete(): Promise<void> {
    if (this.state.isEmpty) {
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

  /**
   * Sets the cleanup alarm only when none is pending: each `setAlarm` is a billed
   * row write, so a busy client must not set one per request. A pending alarm that
   * fires too early simply reschedules itself.
   */
  private scheduleCleanup(): void {
    if (this.alarmAtMs !== null) return;
    this.alarmAtMs = this.state.cleanupAtMs();
    if (this.meter) this.meter.alarmsSet++;
    void this.ctx.storage.setAlarm(this.alarmAtMs);
  }

  /**
   * Group commit. Decisions are made at once, in memory, so each request sees the
   * ones before it; their state is written once for every decision made within
   * `windowMs`. Each reply waits on the commit, which resolves only after the write
   * is issued, so the output gate then holds the reply until the write is durable
   * (docs/architecture.md, invariant 3): no admission leaves before the state that
   * justified it is stored. If the object dies first, the unwritten decisions die
   * with their unsent replies.
   */
  private commitLater(windowMs: number): Promise<void> {
    if (!this.pendingCommit) {
      this.pendingCommit = new Promise((resolve, reject) => {
        setTimeout(() => {
          this.pendingCommit = null;
          try {
            if (this.meter) this.meter.flushes++;
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
   * reply until the write is durable (docs/architecture.md, invariant 3), and SQLite
   * writes are synchronous in memory, so the next request already sees them.
   */
  private persist(): void {
    this.ctx.storage.kv.put(STATE_KEY, this.state.toStored(this.nowMs()));
    if (this.meter) this.meter.rowsWritten++;
  }
}
