/**
 * Counts of what objects did: the costs the benchmark reports and some tests assert. The shipped
 * Worker installs none (see `RateLimiter.meter`), so the product keeps no counters of its own.
 */
export interface ObjectMeter {
  /** RPC calls that decided a batch of requests. */
  calls: number;
  /** Requests decided. */
  decisions: number;
  /** Rows written: one per write of a client's state. */
  rowsWritten: number;
  /** Cleanup alarms set (each a billed row write). */
  alarmsSet: number;
  /** Group commits: writes of every decision made within `groupCommitMs`. */
  flushes: number;
}

/** A meter at zero. */
export function createMeter(): ObjectMeter {
  return { calls: 0, decisions: 0, rowsWritten: 0, alarmsSet: 0, flushes: 0 };
}
