import { RecentMap } from "../runtime/recent-map.ts";

/** At most this many charge ids wait per object; beyond it the oldest is dropped, which only leaves it refundable. */
const MAX_IDS_PER_OBJECT = 256;

/**
 * Provisional charges this isolate saw admitted at every part of their request, waiting to be confirmed to their
 * objects: each goes with this isolate's next call to its object, as lease give-backs do (see `withLeaseTerms`). A
 * confirmed charge can no longer be refunded, so its object's denials need no longer wait on it: they are cached
 * again (docs/architecture.md, invariant 5). A confirmation lost (a failed call, a full table, an evicted isolate)
 * leaves its charge refundable until its refund window ends, as every charge was without confirmations: its object's
 * denials go uncached a little longer, never wrongly.
 * At most 10,000 objects, least recently confirmed first out.
 */
export class Confirmations {
  readonly #byObject = new RecentMap<string[]>(10_000);

  /** Queues the confirmation of charge `chargeId` in `object`: its request was admitted everywhere. */
  add(object: string, chargeId: string): void {
    const ids = this.#byObject.get(object);
    if (ids === undefined) this.#byObject.set(object, [chargeId]);
    else {
      ids.push(chargeId);
      if (ids.length > MAX_IDS_PER_OBJECT) ids.shift();
    }
  }

  /** The charges to confirm with the call about to go to `object`, no longer queued; undefined when there are none. */
  take(object: string): string[] | undefined {
    const ids = this.#byObject.get(object);
    if (ids !== undefined) this.#byObject.delete(object);
    return ids;
  }

  /** Queues again what a failed call carried: its object may not have seen it, and confirming twice changes nothing. */
  putBack(object: string, chargeIds: readonly string[]): void {
    for (const id of chargeIds) this.add(object, id);
  }
}
