import { addTally, emptyTally, type Tally } from "./tally.ts";

/** What was counted within one minute or span, by the metrics object's clock when the flushes arrived. */
export interface TimedTally {
  /** The minute's or span's start, epoch ms. */
  startMs: number;
  tally: Tally;
}

/** A minute's or a span's storage key, ordered by time. */
function timeKey(prefix: string, startMs: number): string {
  return `${prefix}${String(startMs).padStart(15, "0")}`;
}

/** A series of tallies by start time: the minutes, or the spans. */
export class Series {
  private readonly tallies = new Map<number, Tally>();
  private readonly changed = new Set<number>();

  constructor(
    private readonly prefix: string,
    private readonly lengthMs: number,
    private readonly keptMs: number,
    /** Whether the series keeps top denied clients; a span does not. */
    private readonly keepsTopDenied: boolean,
    kv: SyncKvStorage,
  ) {
    for (const [key, tally] of kv.list<Tally>({ prefix })) this.tallies.set(Number(key.slice(prefix.length)), tally);
  }

  add(nowMs: number, tally: Tally): void {
    const startMs = nowMs - (nowMs % this.lengthMs);
    let into = this.tallies.get(startMs);
    if (!into) {
      into = emptyTally();
      this.tallies.set(startMs, into);
    }
    addTally(into, tally);
    if (!this.keepsTopDenied) for (const rule of Object.values(into.rules)) rule.topDenied = [];
    this.changed.add(startMs);
  }

  /** Those not past keeping at `nowMs`, oldest first. */
  read(nowMs: number): TimedTally[] {
    return [...this.tallies]
      .filter(([startMs]) => startMs > nowMs - this.keptMs)
      .sort(([a], [b]) => a - b)
      .map(([startMs, tally]) => ({ startMs, tally }));
  }

  /** Writes what changed, and deletes what is past keeping. */
  persist(kv: SyncKvStorage, nowMs: number): void {
    for (const startMs of this.changed) {
      const tally = this.tallies.get(startMs);
      if (tally) kv.put(timeKey(this.prefix, startMs), tally);
    }
    this.changed.clear();
    for (const startMs of this.tallies.keys()) {
      if (startMs <= nowMs - this.keptMs) {
        this.tallies.delete(startMs);
        kv.delete(timeKey(this.prefix, startMs));
      }
    }
  }
}
