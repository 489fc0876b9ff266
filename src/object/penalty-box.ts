/** Penalty boxes: a key that exhausts a rule with a `block` is blocked for a while, longer each time it comes back. */

import type { BlockLadder } from "../policy/types.ts";

/** What a client's object remembers of one rule's penalties. */
export interface Penalty {
  /** Epoch ms the latest block ends (or ended) at. */
  blockedUntilMs: number;
  /** Its step on the ladder (0 is the first). */
  step: number;
  /** How long it lasted, in ms. */
  blockMs: number;
  /** How long after its end the ladder remembers it: its top step's length. */
  memoryMs: number;
}

/** What is stored of the penalty boxes. */
export interface StoredPenalties {
  /** Rule name → its latest block, while it is in force or the ladder still remembers it. */
  rules?: Record<string, Penalty>;
  /** Epoch ms until which an operator blocked the client (`limiter.block`), every rule of it. */
  blockedUntilMs?: number;
}

/** Denials towards a block, kept in memory only: a restart forgets them, which can only block later. */
interface Strikes {
  count: number;
  sinceMs: number;
}

/**
 * A client's blocks: per rule, the latest block and its step on the ladder; and a block an operator set on the whole
 * client. A denial by a rule with a ladder is a strike; `after` strikes within one period of the rule start a block
 * for the ladder's first duration, or one step higher when the key comes back within the last block's own length
 * after it ended, or the same step in between; a key that stays away for the top step's length starts at the bottom.
 * Pure: the object stores what `toStored` gives, and passes `nowMs` in.
 */
export class PenaltyBox {
  private readonly penalties: Map<string, Penalty>;
  private readonly strikes = new Map<string, Strikes>();
  private clientBlockedUntilMs: number;

  constructor(stored: StoredPenalties = {}) {
    this.penalties = new Map(Object.entries(stored.rules ?? {}));
    this.clientBlockedUntilMs = stored.blockedUntilMs ?? 0;
  }

  /** Whether there is nothing to remember: no block, no ladder memory, no strike. */
  get isEmpty(): boolean {
    return this.penalties.size === 0 && this.clientBlockedUntilMs === 0 && this.strikes.size === 0;
  }

  /** Until when `rule` denies every request of the client (an operator's block included), or 0 when it does not. */
  blockedUntilMs(rule: string, nowMs: number): number {
    const until = Math.max(this.clientBlockedUntilMs, this.penalties.get(rule)?.blockedUntilMs ?? 0);
    return until > nowMs ? until : 0;
  }

  /**
   * Counts a denial by `rule` under `ladder`, and starts a block when it is the `after`-th within one period.
   * Returns the block's end when one starts (which must be stored), else 0.
   */
  strike(rule: string, ladder: BlockLadder, periodSeconds: number, nowMs: number): number {
    const seen = this.strikes.get(rule);
    const strikes =
      seen && nowMs - seen.sinceMs < periodSeconds * 1000 ? { count: seen.count + 1, sinceMs: seen.sinceMs } : { count: 1, sinceMs: nowMs };
    if (strikes.count < ladder.after) {
      this.strikes.set(rule, strikes);
      return 0;
    }
    this.strikes.delete(rule);
    const step = this.nextStep(this.penalties.get(rule), ladder, nowMs);
    const blockMs = (ladder.seconds[step] as number) * 1000;
    const memoryMs = Math.max(...ladder.seconds) * 1000;
    this.penalties.set(rule, { blockedUntilMs: nowMs + blockMs, step, blockMs, memoryMs });
    return nowMs + blockMs;
  }

  /** Blocks every rule of the client until `untilMs` (an operator's block); a later block already in force stays. */
  blockClient(untilMs: number): void {
    this.clientBlockedUntilMs = Math.max(this.clientBlockedUntilMs, untilMs);
  }

  /** Lifts every block of the client, its ladders starting again at the bottom. */
  lift(): void {
    this.penalties.clear();
    this.strikes.clear();
    this.clientBlockedUntilMs = 0;
  }

  /** Until when the client must be kept: its blocks' ends, and each ladder's memory of its latest block after it. */
  keepUntilMs(): number {
    let latest = this.clientBlockedUntilMs;
    for (const penalty of this.penalties.values()) latest = Math.max(latest, penalty.blockedUntilMs + penalty.memoryMs);
    return latest;
  }

  /** Forgets what no longer matters at `nowMs` (ended operator blocks, ladders past their memory); then whether anything is left. */
  trim(nowMs: number): boolean {
    if (this.clientBlockedUntilMs <= nowMs) this.clientBlockedUntilMs = 0;
    for (const [rule, penalty] of this.penalties) if (penalty.blockedUntilMs + penalty.memoryMs <= nowMs) this.penalties.delete(rule);
    return this.penalties.size > 0 || this.clientBlockedUntilMs > 0;
  }

  /** The blocks in force at `nowMs`: the operator's on the whole client, and each rule's. */
  blocksAt(nowMs: number): { blockedUntilMs: number | null; rules: Record<string, number> } {
    const rules: Record<string, number> = {};
    for (const [rule, penalty] of this.penalties) if (penalty.blockedUntilMs > nowMs) rules[rule] = penalty.blockedUntilMs;
    return { blockedUntilMs: this.clientBlockedUntilMs > nowMs ? this.clientBlockedUntilMs : null, rules };
  }

  /** The blocks and ladders to store; strikes stay in memory. */
  toStored(): StoredPenalties | undefined {
    if (this.penalties.size === 0 && this.clientBlockedUntilMs === 0) return undefined;
    return {
      ...(this.penalties.size > 0 ? { rules: Object.fromEntries(this.penalties) } : {}),
      ...(this.clientBlockedUntilMs > 0 ? { blockedUntilMs: this.clientBlockedUntilMs } : {}),
    };
  }

  /** The step of a new block: up one when the key came back within the last block's length of its end. */
  private nextStep(last: Penalty | undefined, ladder: BlockLadder, nowMs: number): number {
    const top = ladder.seconds.length - 1;
    if (!last) return 0;
    const sinceEndMs = nowMs - last.blockedUntilMs;
    if (sinceEndMs <= last.blockMs) return Math.min(last.step + 1, top);
    return sinceEndMs > last.memoryMs ? 0 : Math.min(last.step, top);
  }
}
