import type { Decision } from "../object/protocol.ts";
import { RecentMap } from "../runtime/recent-map.ts";
import { agedDecision } from "./denial-wait.ts";

/** A shared object's denial of one part's rules, under the tier it was asked with. */
interface PartDenial {
  decision: Decision;
  tier: string | undefined;
  cachedAtMs: number;
  untilMs: number;
}

/** At most this many parts' rules are remembered per object; beyond it the object's entries start over. */
const MAX_PARTS_PER_OBJECT = 16;

/** How long an object that denied stays contended: its part is decided first meanwhile (`isContended`). */
export const CONTENDED_MS = 1_000;

/**
 * Denials made by the objects many clients share (a dimension's value's, such as an org's, and the global one),
 * remembered until their exact wait ends, as the middleware remembers a client's (docs/architecture.md, invariant 5):
 * once an org has run out, no request of any of its users through this isolate charges anything anywhere until it
 * could admit again, while its denial is cacheable (`cacheableWaitMs`). A
 * request is charged in all of its objects or none (invariant 2), so one part that must deny denies it whole.
 * Keyed by the object's name and the part's rules (`RuleSetPart.definitions`), and kept only under the tier it was
 * asked with, so that a denial under one tier never answers a request under another. At most 10,000 objects, least
 * recently used first out; one table per isolate and namespace (see `linksOf`).
 */
export class PartDenials {
  readonly #byObject = new RecentMap<Map<string, PartDenial>>(10_000);
  /** Object → until when it is contended (epoch ms). */
  readonly #contended = new RecentMap<number>(10_000);

  /**
   * Notes that `object` (a shared one's, or a client's) denied a request at `nowMs`, cacheable or not: it is contended
   * for `CONTENDED_MS`, and its part decided first (`leadOf` in decide-request.ts).
   */
  noteDenial(object: string, nowMs: number): void {
    this.#contended.set(object, nowMs + CONTENDED_MS);
  }

  /** Whether `object` denied a request within the last `CONTENDED_MS`. */
  isContended(object: string, nowMs: number): boolean {
    const untilMs = this.#contended.get(object);
    if (untilMs === undefined) return false;
    if (untilMs > nowMs) return true;
    this.#contended.delete(object);
    return false;
  }

  /** The object's denial of these rules under `tier`, as it stands at `nowMs`, if one still holds. */
  get(object: string, definitions: string, tier: string | undefined, nowMs: number): Decision | undefined {
    const parts = this.#byObject.get(object);
    const entry = parts?.get(definitions);
    if (!parts || !entry) return undefined;
    if (entry.untilMs <= nowMs) {
      parts.delete(definitions);
      if (parts.size === 0) this.#byObject.delete(object);
      return undefined;
    }
    return entry.tier === tier ? agedDecision(entry.decision, nowMs - entry.cachedAtMs) : undefined;
  }

  /** Remembers the object's denial of these rules under `tier` for `waitMs` (`cacheableWaitMs`) from `nowMs`. */
  set(object: string, definitions: string, tier: string | undefined, decision: Decision, nowMs: number, waitMs: number): void {
    if (waitMs <= 0) return;
    let parts = this.#byObject.get(object);
    if (!parts || (parts.size >= MAX_PARTS_PER_OBJECT && !parts.has(definitions))) {
      parts = new Map();
      this.#byObject.set(object, parts);
    }
    parts.set(definitions, { decision, tier, cachedAtMs: nowMs, untilMs: nowMs + waitMs });
  }

  /** Forgets the object's denials, for an admin change to it made through this isolate. */
  forgetObject(object: string): void {
    this.#byObject.delete(object);
  }
}
