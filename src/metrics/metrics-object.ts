import { DurableObject } from "cloudflare:workers";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { KEY_LISTS, type KeyEnd, type KeyList, type KeyLists, latestEnds } from "./decision-counters.ts";
import { Series, type TimedTally } from "./series.ts";
import { addTally, emptyTally, type Tally } from "./tally.ts";

/** How many metrics objects share the isolates' flushes; a reader merges them all. */
export const METRICS_SHARDS = 16;

/** Per-minute series are kept for this many minutes, the current one included. */
export const SERIES_MINUTES = 60;

/** Beyond the hour, counts are kept in spans of this length (without top denied clients), for `SPANS_KEPT` spans. */
export const SPAN_MS = 5 * 60_000;

/** Spans kept: a day's. */
export const SPANS_KEPT = 288;

/** A metrics object writes at most one set of rows per this interval, however many isolates flush into it. */
const COMMIT_INTERVAL_MS = 1000;

/** An isolate not heard from for this long is forgotten: its ids are random, so it never comes back. */
const ISOLATE_RETENTION_MS = 60 * 60 * 1000;

/**
 * Isolates remembered at most, the least recently heard from forgotten first: their numbers are one row, rewritten
 * with each commit, and must stay far below a stored value's size limit (about 70 bytes each, so 700 KB).
 */
const MAX_ISOLATES = 10_000;

const TOTALS_KEY = "totals";
const ISOLATES_KEY = "isolates";
const MINUTE_PREFIX = "minute:";
const SPAN_PREFIX = "span:";

/** What one isolate counted since its previous flush, numbered so that a flush sent twice is added once. */
export interface Flush {
  isolateId: string;
  /** Increases by one with each flush of the isolate. */
  sequence: number;
  tally: Tally;
  /** Keys the isolate saw blocked since its previous flush: candidates for the admin API's list of blocks. */
  blocks?: KeyEnd[];
  /** Keys the isolate was granted a lease of since its previous flush, for at least `LEASES_LISTED_MS` from the grant. */
  leases?: KeyEnd[];
  /** Keys whose admissions it holds until they settle, until their holds' `holdTtlSeconds` end. */
  holds?: KeyEnd[];
}

/** What a read asks for beside the totals, the last hour's minutes and the lists of keys. */
export interface ReadOptions {
  /** Whether to include the last day's spans (`SPAN_MS` each): a day's read is larger. @default false */
  spans?: boolean;
}

/**
 * What a metrics object holds: the totals since it was created, the last hour minute by minute, oldest first, and the
 * keys its isolates saw blocked, leasing or holding whose ends had not passed when they were seen (each list
 * latest-ending first, at most `MAX_KEY_ENDS`). A key may have been unblocked, or given its lease back, since: only
 * its object knows.
 */
export interface MetricsReport extends KeyLists {
  totals: Tally;
  minutes: TimedTally[];
  /** With `spans: true`, the last day in spans of `SPAN_MS`, oldest first, their top denied clients empty. */
  spans?: TimedTally[];
}

/** The object that one shard of the isolates flushes into: `metrics:<shard>`. */
export function metricsObjectName(shard: number): string {
  return `metrics:${shard}`;
}

/**
 * Merges the flushes of the isolates of one shard into totals, a per-minute series for the last hour, 5-minute spans
 * for the last day, and the lists of keys they saw blocked, leasing or holding (`MetricsReport`). Sharded so
 * that no one object takes every isolate's flushes (see docs/metrics.md for the rates); the admin API reads and merges
 * every shard. Counters only: nothing here takes part in a decision.
 * @example
 * // Exported beside RateLimiter and bound as RATE_LIMIT_METRICS (a new_sqlite_classes migration), it receives the counts.
 * export { RateLimiter, RateLimitMetrics } from "edge-rate-limiter";
 */
export class RateLimitMetrics extends DurableObject {
  /** The object's clock, which puts flushes in minutes. Only tests replace it, through `runInDurableObject`. */
  clock: Clock = systemClock;

  private readonly totals: Tally;
  private readonly minutes: Series;
  private readonly spans: Series;
  /** Each isolate's last sequence added, and when. */
  private readonly isolates: Record<string, { sequence: number; atMs: number }>;
  private readonly lists: KeyLists;
  private readonly changedLists = new Set<KeyList>();
  private pendingCommit: Promise<void> | null = null;
  private lastCommitMs = 0;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    const kv = ctx.storage.kv;
    this.totals = kv.get<Tally>(TOTALS_KEY) ?? emptyTally();
    this.isolates = kv.get(ISOLATES_KEY) ?? {};
    // Each list is stored under its name.
    this.lists = { blocks: kv.get("blocks") ?? [], leases: kv.get("leases") ?? [], holds: kv.get("holds") ?? [] };
    this.minutes = new Series(MINUTE_PREFIX, 60_000, SERIES_MINUTES * 60_000, true, kv);
    this.spans = new Series(SPAN_PREFIX, SPAN_MS, SPANS_KEPT * SPAN_MS, false, kv);
  }

  /**
   * Adds an isolate's flushes, oldest first, skipping those already added (a retry whose first attempt arrived).
   * Resolves once they are stored, with the last sequence now counted, which the isolate may then forget.
   */
  async add(flushes: readonly Flush[]): Promise<number> {
    const nowMs = this.clock.nowMs();
    let acknowledged = 0;
    for (const flush of flushes) {
      const { isolateId, sequence, tally } = flush;
      for (const list of KEY_LISTS) {
        const ends = flush[list];
        if (ends === undefined || ends.length === 0) continue;
        // Idempotent, so a flush sent twice changes nothing the second time.
        this.lists[list] = latestEnds([...this.lists[list], ...ends], nowMs);
        this.changedLists.add(list);
      }
      const seen = this.isolates[isolateId];
      if (seen === undefined || sequence > seen.sequence) {
        addTally(this.totals, tally);
        this.minutes.add(nowMs, tally);
        this.spans.add(nowMs, tally);
        this.isolates[isolateId] = { sequence, atMs: nowMs };
      }
      acknowledged = Math.max(acknowledged, this.isolates[isolateId]?.sequence ?? sequence);
    }
    await this.commit();
    return acknowledged;
  }

  /** The totals, the last hour's minutes, oldest first, the lists of keys not ended, and on request the last day's spans. */
  read(options: ReadOptions = {}): MetricsReport {
    const nowMs = this.clock.nowMs();
    const report: MetricsReport = {
      totals: this.totals,
      minutes: this.minutes.read(nowMs),
      blocks: latestEnds(this.lists.blocks, nowMs),
      leases: latestEnds(this.lists.leases, nowMs),
      holds: latestEnds(this.lists.holds, nowMs),
    };
    if (options.spans) report.spans = this.spans.read(nowMs);
    return report;
  }

  /**
   * Stores what changed, at most once per `COMMIT_INTERVAL_MS`: flushes that arrive meanwhile wait for the same write.
   * The reply waits on it, so a flush is acknowledged only once it is stored (the output gate).
   */
  private commit(): Promise<void> {
    if (!this.pendingCommit) {
      // Real time, not `clock`: this paces writes, while `clock` puts counts in minutes.
      const delayMs = Math.max(0, this.lastCommitMs + COMMIT_INTERVAL_MS - Date.now());
      this.pendingCommit = new Promise((resolve, reject) => {
        setTimeout(() => {
          this.pendingCommit = null;
          this.lastCommitMs = Date.now();
          try {
            this.persist(this.clock.nowMs());
            resolve();
          } catch (error) {
            reject(error);
          }
        }, delayMs);
      });
    }
    return this.pendingCommit;
  }

  /**
   * Writes the totals, the minutes and spans that changed, the isolates' sequences and each list of keys that
   * changed; deletes minutes, spans and isolates past keeping.
   */
  private persist(nowMs: number): void {
    const kv = this.ctx.storage.kv;
    kv.put(TOTALS_KEY, this.totals);
    this.minutes.persist(kv, nowMs);
    this.spans.persist(kv, nowMs);
    for (const [isolateId, { atMs }] of Object.entries(this.isolates)) {
      if (atMs < nowMs - ISOLATE_RETENTION_MS) delete this.isolates[isolateId];
    }
    const remembered = Object.entries(this.isolates);
    if (remembered.length > MAX_ISOLATES) {
      remembered.sort(([, a], [, b]) => a.atMs - b.atMs);
      for (const [isolateId] of remembered.slice(0, remembered.length - MAX_ISOLATES)) delete this.isolates[isolateId];
    }
    kv.put(ISOLATES_KEY, this.isolates);
    for (const list of this.changedLists) {
      this.lists[list] = latestEnds(this.lists[list], nowMs);
      kv.put(list, this.lists[list]);
    }
    this.changedLists.clear();
  }
}
