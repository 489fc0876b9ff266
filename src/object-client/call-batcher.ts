/** Sends a batch of items as one call and returns one result per item, in order. */
export type SendBatch<Item, Result> = (items: Item[]) => Promise<Result[]>;

/** Handed to a queued caller whose turn it is to send the next batch itself. */
const LEAD: unique symbol = Symbol("lead");

/** What a queued caller's own timer ends with. */
const EXPIRED: unique symbol = Symbol("expired");

/** What a queued caller is woken with: its result, the turn to send the next batch, or the end of its own wait. */
type Turn<Result> = Result | typeof LEAD | typeof EXPIRED;

interface Waiting<Item, Result> {
  item: Item;
  resolve: (turn: Turn<Result>) => void;
  reject: (error: unknown) => void;
  /** Set the moment its own timer ends: from then on it is neither sent nor handed the turn. */
  expired: boolean;
}

/** One key's calls in flight, and the callers queued behind them. */
interface Lane<Item, Result> {
  inFlight: number;
  queue: Waiting<Item, Result>[];
  /** When a call of this key was last sent or answered. */
  progressAtMs: number;
}

/** The error a queued caller gets when the call it waited behind made no progress within the wait limit. */
export class BatchWaitTimeout extends Error {
  constructor(waitLimitMs: number) {
    super(`an earlier call to the same object made no progress for ${waitLimitMs} ms`);
  }
}

/**
 * Coalesces concurrent calls to one key (one Durable Object) from this isolate.
 * The first caller sends at once. While its call is in flight, later callers queue;
 * when it returns, the first of them sends everything queued as one call, with its
 * own `send` (so from its own request: a stub belongs to the request that made it).
 * A lone caller never waits; under load there is one call per round trip instead
 * of one per request, and the callee decides a batch in order, exactly as the
 * separate calls, so nothing about a decision changes.
 */
export class CallBatcher<Item, Result> {
  private readonly lanes = new Map<string, Lane<Item, Result>>();
  private readonly maxInFlight: number;
  private readonly maxBatchSize: number;
  private readonly nowMs: () => number;
  private readonly sleep: (ms: number) => Promise<unknown>;
  private readonly answerLocally: ((key: string, item: Item) => Result | undefined) | undefined;

  /**
   * @param options.maxInFlight calls to one key that may be in flight at once before callers queue. @default 1
   * @param options.maxBatchSize most items in one call; the rest wait for the next. @default 500
   * @param options.nowMs the clock that tells a stalled call; only tests set it. @default Date.now
   * @param options.sleep a timer for queued callers; only tests set it. @default scheduler.wait
   * @param options.answerLocally asked for each item of a batch about to be sent: a result it gives is the
   *   item's, and the item is not sent (a lease the call ahead brought may cover it).
   */
  constructor(
    options: {
      maxInFlight?: number;
      maxBatchSize?: number;
      nowMs?: () => number;
      sleep?: (ms: number) => Promise<unknown>;
      answerLocally?: (key: string, item: Item) => Result | undefined;
    } = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
    this.maxBatchSize = options.maxBatchSize ?? 500;
    this.nowMs = options.nowMs ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => scheduler.wait(ms));
    this.answerLocally = options.answerLocally;
  }

  /** Number of keys with a call in flight (for tests). */
  get activeKeys(): number {
    return this.lanes.size;
  }

  /**
   * The result for `item`. A queued caller waits for the calls ahead of it, which
   * `send` bounds with its own timeout. Should they make no progress for
   * `waitLimitMs` all the same (their request died with them), the next caller for
   * the key fails everyone queued behind them with BatchWaitTimeout and starts afresh.
   *
   * A queued caller also waits on a timer of its own request: workerd cancels a request
   * that awaits only a promise another request settles, taking it for hung. The timer is
   * `scheduler.wait`, never cleared (it ends with the request): a setTimeout and
   * clearTimeout pair per queued caller cost more than the batching saved on a hot key.
   */
  async call(key: string, item: Item, send: SendBatch<Item, Result>, waitLimitMs: number): Promise<Result> {
    const nowMs = this.nowMs();
    let lane = this.lanes.get(key);
    if (lane && lane.inFlight >= this.maxInFlight && nowMs - lane.progressAtMs > waitLimitMs) {
      this.abandon(key, lane, waitLimitMs);
      lane = undefined;
    }
    if (!lane) {
      lane = { inFlight: 0, queue: [], progressAtMs: nowMs };
      this.lanes.set(key, lane);
    }
    if (lane.inFlight < this.maxInFlight) {
      lane.inFlight++;
      return this.lead(key, lane, item, send);
    }
    const { promise, resolve, reject } = Promise.withResolvers<Turn<Result>>();
    const waiting: Waiting<Item, Result> = { item, resolve, reject, expired: false };
    lane.queue.push(waiting);
    // Whichever comes first settles the one promise: the caller's turn, or its own timer.
    void this.sleep(waitLimitMs).then(() => {
      waiting.expired = true;
      resolve(EXPIRED);
    });
    const turn = await promise;
    if (turn === EXPIRED) {
      // Nobody came to fail it: the lane has stalled. Follow onError; the next caller starts afresh.
      if (this.lanes.get(key) === lane) this.lanes.delete(key);
      throw new BatchWaitTimeout(waitLimitMs);
    }
    return turn === LEAD ? this.lead(key, lane, item, send) : turn;
  }

  /** Fails everyone queued behind a stalled lane and forgets it; its calls in flight hand nothing on when they end. */
  private abandon(key: string, lane: Lane<Item, Result>, waitLimitMs: number): void {
    for (const waiting of lane.queue.splice(0)) waiting.reject(new BatchWaitTimeout(waitLimitMs));
    this.lanes.delete(key);
  }

  /**
   * Sends `first` with everything queued behind it, hands the results out, then passes the turn on. Queued
   * items `answerLocally` answers are answered at once and not sent. When it answers `first`, the turn passes
   * on at once to the next caller still queued.
   */
  private async lead(key: string, lane: Lane<Item, Result>, first: Item, send: SendBatch<Item, Result>): Promise<Result> {
    lane.progressAtMs = this.nowMs();
    // The oldest first: a lease the call ahead brought covers the requests in the order they came.
    const firstLocally = this.answerLocally?.(key, first);
    const followers = this.notAnsweredLocally(key, this.takeQueued(lane, this.maxBatchSize - 1));
    if (firstLocally !== undefined) {
      lane.queue.unshift(...followers);
      this.passTurn(key, lane);
      return firstLocally;
    }
    let results: Result[];
    try {
      results = await send([first, ...followers.map((waiting) => waiting.item)]);
      if (results.length !== followers.length + 1) throw new Error(`expected ${followers.length + 1} results, got ${results.length}`);
    } catch (error) {
      for (const waiting of followers) waiting.reject(error);
      this.passTurn(key, lane);
      throw error;
    }
    followers.forEach((waiting, index) => {
      waiting.resolve(results[index + 1] as Result);
    });
    this.passTurn(key, lane);
    return results[0] as Result;
  }

  /** The queued callers `answerLocally` does not answer; those it answers are woken with their result. */
  private notAnsweredLocally(key: string, queued: Waiting<Item, Result>[]): Waiting<Item, Result>[] {
    const answerLocally = this.answerLocally;
    if (!answerLocally) return queued;
    return queued.filter((waiting) => {
      const result = answerLocally(key, waiting.item);
      if (result === undefined) return true;
      waiting.resolve(result);
      return false;
    });
  }

  /** Up to `count` queued callers, oldest first, leaving out those whose own timer has ended. */
  private takeQueued(lane: Lane<Item, Result>, count: number): Waiting<Item, Result>[] {
    const taken: Waiting<Item, Result>[] = [];
    while (taken.length < count && lane.queue.length > 0) {
      const waiting = lane.queue.shift();
      if (waiting && !waiting.expired) taken.push(waiting);
    }
    return taken;
  }

  private passTurn(key: string, lane: Lane<Item, Result>): void {
    lane.progressAtMs = this.nowMs();
    const [next] = this.takeQueued(lane, 1);
    if (next) {
      next.resolve(LEAD);
      return;
    }
    lane.inFlight--;
    if (lane.inFlight === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
  }
}
