/** What the Worker and a client's object say to each other over RPC, and what the Worker answers with. */

import type { RuleDecision } from "../limiter/types.ts";
import type { Limits, Rule } from "../policy/types.ts";

/** One rule's verdict within a decision, with what the headers need to describe it. */
export interface RuleVerdict extends RuleDecision {
  /** The rule's name, as in `RateLimit-Policy`. */
  name: string;
  periodSeconds: number;
  /** A shadow rule is reported but never blocks. */
  mode: "enforce" | "shadow";
  /** Set when the rule's object could not answer and its onError decided. */
  degraded?: boolean;
  /** Set when the rule denies because the key is blocked (a penalty box, or an operator's block) until `retryAfterMs`. */
  blocked?: boolean;
}

/** The decision on one request: admitted only if every enforcing rule admits it. */
export interface Decision {
  allowed: boolean;
  rules: RuleVerdict[];
  /** Set when an object could not answer and the rules' onError decided instead. */
  degraded?: boolean;
  /** Set when this isolate admitted the request from leases, asking no object (see `object-client/lease-table.ts`). */
  leased?: boolean;
  /**
   * Set when this isolate denied the request from its memory of a shared object's denial (an org's, the global one's),
   * asking no object (see `object-client/part-denials.ts`).
   */
  cached?: boolean;
  /**
   * Set on a denial made while another request's provisional charge could still be refunded: the refund may admit a
   * request before the rules' waits end, so the denial is not cached (see `cacheableWaitMs`).
   */
  refundsPending?: boolean;
  /**
   * Set when the admission is held until its response settles it (docs/configuration.md, Holds): what to pass to
   * the limiter's `settle()`, naming each object's hold. Opaque.
   */
  hold?: string;
}

/**
 * A rule as an object receives it: without its `match`, which only the Worker uses, and with
 * the limits each tier sets for it, so that the object can apply the tier in force (an
 * override's, which only the object knows, else the client's) without the policy's tiers table.
 */
export interface ObjectRule extends Omit<Rule, "match" | "key"> {
  /** Tier name → the limits that tier sets for this rule; absent when no tier changes it. */
  tiers?: Record<string, Limits> | undefined;
}

/** What a client's object is asked to decide for one request. Made once per rule set (see `policy/compiled-policy.ts`). */
export interface DecisionRequest {
  /** The rules that apply, each decided against its own bucket. */
  rules: readonly ObjectRule[];
  /** The client's tier from the policy's `clients` mapping. */
  tier?: string | undefined;
  /** How long a client whose buckets are full again is kept before cleanup. */
  idleRetentionSeconds: number;
  /** How long admitted decisions wait to be written together (see `commitLater`). @default 0 */
  groupCommitMs?: number;
  /** Whether writes store units charged in advance for later admissions (see `limiter/reservation.ts`). @default true */
  reservations?: boolean;
  /** Set when another object still has to decide the request, so this charge may be refunded. */
  provisional?: boolean;
  /** Set to hold the admission's charge until the response settles it, for at most `ttlMs` (see `HoldSettlement`). */
  hold?: { ttlMs: number };
  /** A lease to grant with this request's admission, if the rules allow one (see `object/lease-ledger.ts`). */
  lease?: LeaseAsk;
  /** Leases the isolate gives back, each with the requests it did not spend. */
  givenBack?: LeaseReturn[];
  /**
   * Provisional charges (`chargeId`s) of this object whose requests every other part admitted since: no longer
   * refundable, they no longer keep this object's denials from being cached (see `object-client/confirmations.ts`).
   */
  confirmed?: readonly string[];
}

/** A lease an isolate asks for: up to `requests` more requests of the same rule set, for at most `lifetimeMs`. */
export interface LeaseAsk {
  requests: number;
  lifetimeMs: number;
}

/**
 * A lease granted with an admission: `requests` more requests of the same rule set, charged already, that the
 * isolate may admit itself for `lifetimeMs` from when it sent the request (before the object granted it), less a
 * tenth (see `object-client/lease-table.ts`), so that the isolate stops first.
 */
export interface LeaseGrant {
  id: string;
  requests: number;
  lifetimeMs: number;
}

/** A lease an isolate gives back before it ends, with the requests it did not spend. */
export interface LeaseReturn {
  id: string;
  unspentRequests: number;
  /**
   * When the isolate spent the others: pairs of [ms after it sent the request that brought the lease, requests spent
   * then], in order, a pair standing for no earlier a time than its spends'. The object then counts each spend from
   * then rather than from the grant, so that its refill is never lost while the bucket is full (see
   * `RefundJournal.respendLease`). Absent, they count as the lease's cap had them: charged at the grant, their refill
   * held back until the give-back.
   */
  spent?: ReadonlyArray<readonly [number, number]>;
}

/**
 * How a held admission's response went, which settles its hold: each rule keeps its charge, at `cost` units in place
 * of those held, if its `count` says so for the outcome (a rule without `count` always does), and is refunded exactly
 * otherwise. A settlement above what was held is charged too: the bucket owes it, and later requests wait.
 */
export interface HoldSettlement {
  /** Whether the request succeeded (by default, a status below 400). */
  successful: boolean;
  /** Units each kept charge is settled at: the actual cost, once known. 0 refunds. @default the units held */
  cost?: number | undefined;
}

/** An object's decision, plus the id to refund its charge with when the request was provisional. */
export interface ObjectDecision extends Decision {
  chargeId?: string;
  /** The hold of this admission's charge in this object, when the request asked for one. */
  holdId?: string;
  /** The lease granted with this admission, when one was asked for and the rules allow it. */
  lease?: LeaseGrant;
}

/** Limits an operator set for one client through the admin API. */
export interface Override {
  /** Replaces the client's tier. */
  tier?: string | undefined;
  /** Replaces limits of single rules, on top of the tier. */
  rules?: Record<string, Limits> | undefined;
  /** Epoch ms after which the override no longer applies; absent: until removed. */
  expiresAt?: number | undefined;
}

/** What the admin API is told of a client: its tier, override and every rule's state. */
export interface ClientReport {
  /** The tier in effect: the override's, else the static one, else null. */
  tier: string | null;
  override: Override | null;
  /**
   * Each rule's state; `remaining` is what the object holds, `leased` what isolates hold in leases and may still
   * spend, `held` what admissions awaiting their settlement hold (docs/configuration.md, Holds).
   */
  rules: Array<RuleVerdict & { algorithm: Rule["algorithm"]; burst: number; leased: number; held: number }>;
  /** Until when an operator blocked the client (`block`), epoch ms; null when no such block is in force. */
  blockedUntilMs: number | null;
  /** Rule name → when the penalty box's block of it ends (epoch ms), for each rule blocked now. */
  blockedRules: Record<string, number>;
}
