// zipf-1000-hierarchy: the zipf mix where every request counts against its client, its org and everyone, and each
// level's accuracy checked on the server's record of what it admitted and denied (bench/README.md).
import { denialExplainer, MAX_CHECKED, type RateLimit, type RecordedAdmission, worstOverAdmission } from "./history.ts";

/** The request header that names a request's org, as the hierarchy's policy declares its `org` dimension. */
export const ORG_HEADER = "x-org";

/** What zipf-1000-hierarchy adds to zipf-1000's client rule: how many orgs the clients belong to, and their rules. */
export interface Hierarchy {
  orgs: number;
  /** Each org's rule (`key: "org"`), one budget per org. */
  org: RateLimit;
  /** The global rule (`key: "global"`), one budget for every request. */
  global: RateLimit;
}

/** zipf-1000-hierarchy's orgs and rules, besides each client's (zipf-1000's limit). */
export const HIERARCHY: Hierarchy = {
  orgs: 20,
  // An org's budget is what zipf-1000 gives one client (100 per minute): the orgs of the heaviest clients come near
  // it or run out towards the end of a full run, so the org rule denies too, and the client's charge is refunded.
  org: { limit: 100, periodSeconds: 60, burst: 100 },
  // 100 per second after a burst of 1,000: one turn of this machine's zipf mix (about 500 requests) spends about half.
  global: { limit: 100, periodSeconds: 1, burst: 1_000 },
};

/**
 * The org of a client key: client i (`zipf-i`, or any key ending in a number) belongs to org i % `orgs`; a key
 * without a number to org 0. The load generator sends it, and the run groups admissions by it, with this one function.
 *
 * @example orgOf("zipf-41", 20) // "org-1"
 */
export function orgOf(key: string, orgs: number): string {
  const index = Number(/\d+$/.exec(key)?.[0] ?? 0);
  return `org-${index % orgs}`;
}

/** The hierarchy's part of this project's policy: the `org` dimension, read from ORG_HEADER, and the org and global rules. */
export function hierarchyPolicy(hierarchy: Hierarchy): { dimensions: object; rules: object[] } {
  const rule = (name: string, key: string, limits: RateLimit) => ({
    name,
    key,
    limit: limits.limit,
    period: limits.periodSeconds,
    burst: limits.burst,
  });
  return {
    dimensions: { org: { from: "header", name: ORG_HEADER } },
    rules: [rule("bench-org", "org", hierarchy.org), rule("bench-everyone", "global", hierarchy.global)],
  };
}

/** A level of the hierarchy: the limit it holds each of its keys to, and the key a client's request counts against. */
export interface Level {
  name: "client" | "org" | "global";
  limit: RateLimit;
  keyOf: (clientKey: string) => string;
}

/** The three levels: each client under the scenario's limit, each org and everyone under the hierarchy's rules. */
export function levelsOf(client: RateLimit, hierarchy: Hierarchy): Level[] {
  return [
    { name: "client", limit: client, keyOf: (key) => key },
    { name: "org", limit: hierarchy.org, keyOf: (key) => orgOf(key, hierarchy.orgs) },
    { name: "global", limit: hierarchy.global, keyOf: () => "global" },
  ];
}

/** A decision as the server recorded it: [arrived, answered, client key], on its clock. */
export type RecordedDecision = readonly [number, number, string];

/** The hierarchy's accuracy over a run. */
export interface HierarchyAccuracy {
  /** Per level, the most any interval of any of its keys' histories went over its bound: 0 or less is exact. */
  overAdmissionByLevel: Record<Level["name"], number>;
  /** Denials measured that no level's bound explains (see `denialExplainer`): 0 is exact. */
  unexplainedDenials: number;
  denials: number;
}

/** Each key's admissions at one level. */
function historiesOf(decisions: readonly RecordedDecision[], level: Level): Map<string, RecordedAdmission[]> {
  const histories = new Map<string, RecordedAdmission[]>();
  for (const [fromMs, atMs, clientKey] of decisions) {
    const key = level.keyOf(clientKey);
    const history = histories.get(key) ?? [];
    history.push({ fromMs, atMs });
    histories.set(key, history);
  }
  return histories;
}

/** The worst over-admission of a level's keys: interval by interval, or over the whole span for a longer history. */
function worstOfLevel(histories: Map<string, RecordedAdmission[]>, limit: RateLimit, spanSeconds: number): number {
  const overs = [...histories.values()].map((history) =>
    history.length <= MAX_CHECKED
      ? worstOverAdmission(history, limit)
      : history.length - Math.floor(limit.burst + (limit.limit / limit.periodSeconds) * spanSeconds),
  );
  return overs.length === 0 ? 0 : Math.max(...overs);
}

/**
 * Every level checked both ways: over-admission on the admissions measured (arrived from `sinceMs`), over
 * `spanSeconds` when a history is too long to check interval by interval; and each denial measured, explained by the
 * bound of its client, its org or everyone, counted from every admission recorded (the warm-up's too: they spent the
 * same orgs' and everyone's budget).
 */
export function checkHierarchy(options: {
  admissions: readonly RecordedDecision[];
  denials: readonly RecordedDecision[];
  sinceMs: number;
  spanSeconds: number;
  levels: readonly Level[];
}): HierarchyAccuracy {
  const { admissions, sinceMs, spanSeconds, levels } = options;
  const measured = admissions.filter(([fromMs]) => fromMs >= sinceMs);
  const overAdmissionByLevel = { client: 0, org: 0, global: 0 };
  for (const level of levels) overAdmissionByLevel[level.name] = worstOfLevel(historiesOf(measured, level), level.limit, spanSeconds);
  const explainers = levels.map((level) => {
    const histories = historiesOf(admissions, level);
    const made = new Map<string, (denial: RecordedAdmission) => boolean>();
    return (clientKey: string, denial: RecordedAdmission) => {
      const key = level.keyOf(clientKey);
      let explains = made.get(key);
      if (!explains) {
        explains = denialExplainer(histories.get(key) ?? [], level.limit);
        made.set(key, explains);
      }
      return explains(denial);
    };
  });
  const denials = options.denials.filter(([fromMs]) => fromMs >= sinceMs);
  const unexplainedDenials = denials.filter(
    ([fromMs, atMs, clientKey]) => !explainers.some((explains) => explains(clientKey, { fromMs, atMs })),
  ).length;
  return { overAdmissionByLevel, unexplainedDenials, denials: denials.length };
}
