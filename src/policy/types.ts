import type { PathMatching } from "../http/request-path.ts";
import type { IdentityOptions } from "../identity/identity-options.ts";
import type { AlgorithmName } from "../limiter/registry.ts";

/** Which requests a rule applies to. */
export interface RuleMatch {
  /** Upper-case HTTP methods; all methods when absent. */
  methods?: string[] | undefined;
  /** A path pattern where `*` matches any run of characters, `/` included; all paths when absent. */
  path?: string | undefined;
}

/** A rule's penalty ladder, as the policy gives it (`rules[].block`). */
export interface BlockLadder {
  /** How long each block lasts, in seconds: the first, then each one after, the last repeated. */
  seconds: readonly number[];
  /** How many denials within one period of the rule start a block. */
  after: number;
}

/** One named limit, with its period in seconds and every default applied. */
export interface Rule {
  name: string;
  match?: RuleMatch;
  algorithm: AlgorithmName;
  limit: number;
  periodSeconds: number;
  burst: number;
  cost: number;
  /** "shadow" decides and reports but never blocks. */
  mode: "enforce" | "shadow";
  /** What to do when the rule's Durable Object cannot answer. */
  onError: "allow" | "deny";
  /**
   * Whose object counts the rule (docs/configuration.md, Keys): `"client"`, each client in its own; `"global"`, one
   * budget every client shares; or a dimension's name (`"org"`, `"ip"`, `"email"`), one budget per value of it.
   */
  key: string;
  /** `"client"` for a rule counted in the client's own object, which tiers and overrides apply to; `"global"` otherwise. */
  scope: "client" | "global";
  /**
   * Which admitted requests the rule keeps counted once their response is known (docs/configuration.md, Holds):
   * absent, every one; `"failed"` or `"successful"`, only those, the others refunded exactly. Charged at admission
   * either way, as a hold, so that concurrent requests are bounded.
   */
  count?: "failed" | "successful";
  /** With `count: "failed"`: a successful request starts the rule's bucket afresh, forgiving the failures before it. */
  resetOnSuccess?: true;
  /**
   * The rule's penalty ladder (docs/configuration.md, Penalty boxes): `after` denials within a period block the key
   * for `seconds[0]`, and coming back soon after a block climbs the ladder.
   */
  block?: BlockLadder;
}

/** Where a dimension's value comes from (the policy's `dimensions`). */
export type DimensionSource =
  /** The app says it: `limit(key, { keys: { org } })`, or the middleware's `keys` option. */
  | { from: "caller" }
  /** A request header. */
  | { from: "header"; name: string }
  /** A query parameter. */
  | { from: "query"; name: string }
  /** A segment of the routed path, counted from 0 after the leading "/". */
  | { from: "path"; segment: number }
  /** A field of a JSON, URL-encoded or multipart form body (at most `MAX_DIMENSION_BODY_BYTES` of it is read). */
  | { from: "body"; field: string }
  /** The values of other dimensions together, e.g. email and IP: one budget per pair. */
  | { from: "combined"; of: string[] }
  /** The client's address, `CF-Connecting-IP`: the built-in `ip` dimension. */
  | { from: "ip" };

/** A key rules may count by besides the client and the global one. */
export interface Dimension {
  source: DimensionSource;
  /** Whether values are lower-cased before they are hashed, so that `Alice@Example.com` counts as `alice@example.com`. */
  lowercase: boolean;
  /** A request without a value: answered 400 naming the dimension ("reject"), or not charged to its rules ("skip"). */
  whenMissing: "reject" | "skip";
}

/** Limits a tier or an override sets for one rule; unset fields keep the rule's. */
export interface Limits {
  limit?: number | undefined;
  periodSeconds?: number | undefined;
  burst?: number | undefined;
}

/** The whole rate-limiting policy. */
export interface Policy {
  rules: Rule[];
  /** Per tier, per rule name: limits that replace the rule's. */
  tiers: Record<string, Record<string, Limits>>;
  /** Client id → tier name. */
  clients: Record<string, string>;
  /** Client ids and IP ranges never limited. */
  allow: string[];
  /** Client ids and IP ranges always answered 403. */
  deny: string[];
  /** Where the client's identity comes from. */
  identity: IdentityOptions;
  /** The dimensions rules may name as their `key`, by name; `ip` is always among them. */
  dimensions: Record<string, Dimension>;
  /** How rules compare request paths (see `http/request-path.ts`). */
  paths: PathMatching;
  /** Whether to send X-RateLimit-Limit, -Remaining and -Reset too. */
  legacyHeaders: boolean;
  /**
   * Which decisions get a log line: every one, only those worth acting on (denied,
   * degraded, or denied by a shadow rule), or none. Errors are always logged.
   */
  logDecisions: "all" | "denied" | "none";
  /** How long a client whose buckets are full again is kept before its object is cleaned up. */
  idleRetentionSeconds: number;
  /** How long to wait for a Durable Object's answer before applying the rules' onError. */
  objectTimeoutMs: number;
  /** How long an object gathers admitted decisions before writing them with one row write. */
  groupCommitMs: number;
  /**
   * Whether each write stores units charged in advance, so that later admissions need no write
   * (see `limiter/reservation.ts`); a restart then costs a client at most an eighth of its burst.
   */
  reservations: boolean;
  /**
   * Whether an isolate that sees a rule set hot may be granted a lease of its requests by the object, and
   * admit them itself until the lease ends (see `object-client/lease-table.ts`). @default true
   */
  leases: boolean;
  /** How long a lease lasts at most. @default 1000 */
  leaseLifetimeMs: number;
  /** How long a hold awaits its settlement before it stands as charged (docs/configuration.md, Holds). */
  holdTtlSeconds: number;
}
