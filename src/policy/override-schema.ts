import * as v from "valibot";
import { hasBurst, noBurstProblem } from "./limits.ts";
import { limitsSchema } from "./schema.ts";
import { droppedKeysOf, issueAt, strictFields } from "./schema-issues.ts";
import type { Policy } from "./types.ts";

/** The longest block an operator sets by hand: 30 days. */
export const MAX_MANUAL_BLOCK_SECONDS = 30 * 86_400;

/** Whether a value can be how long an operator blocks a client: a whole number of seconds from 1 to 30 days. */
export function isBlockSeconds(seconds: unknown): seconds is number {
  return Number.isSafeInteger(seconds) && (seconds as number) >= 1 && (seconds as number) <= MAX_MANUAL_BLOCK_SECONDS;
}

/** The admin API's block body: how long to block the client, every rule of it. */
export const blockBodySchema = strictFields({
  seconds: v.pipe(
    v.number("must be a number of seconds"),
    v.check(
      (seconds: number) => isBlockSeconds(seconds),
      `must be a whole number of seconds from 1 to ${MAX_MANUAL_BLOCK_SECONDS} (30 days)`,
    ),
  ),
});

/**
 * The admin API's override body: a tier and/or per-rule limits of the object's own rules (a client's, or with
 * `dimension` those of a dimension's value, such as an org's), and an optional expiry.
 */
export function overrideSchema(policy: Policy, dimension?: string) {
  const whose = dimension === undefined ? "client rule" : `rule of the "${dimension}" dimension`;
  const clientRules = new Map(policy.rules.filter((rule) => rule.key === (dimension ?? "client")).map((rule) => [rule.name, rule]));
  return v.pipe(
    v.unknown(),
    // A record drops a rule named `constructor` (or `__proto__`) without a word: it is named as any unknown rule is.
    v.rawCheck(({ dataset, addIssue }) => {
      const rules = typeof dataset.value === "object" && dataset.value !== null ? (dataset.value as { rules?: unknown }).rules : undefined;
      for (const name of droppedKeysOf(rules)) addIssue(issueAt(dataset.value, ["rules", name], `no ${whose} named "${name}"`));
    }),
    strictFields({
      tier: v.optional(
        v.pipe(
          v.string("must be a tier name"),
          v.check(
            (tier: string) => Object.hasOwn(policy.tiers, tier),
            `must be one of the policy's tiers: ${Object.keys(policy.tiers).join(", ") || "(none defined)"}`,
          ),
        ),
      ),
      rules: v.optional(v.record(v.string(), limitsSchema)),
      expiresAt: v.optional(
        v.pipe(
          v.union([v.number(), v.pipe(v.string(), v.isoTimestamp())], "must be an ISO 8601 date-time or epoch milliseconds"),
          v.transform((value: number | string) => (typeof value === "number" ? value : Date.parse(value))),
        ),
      ),
    }),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const body = dataset.value;
      if (body.tier === undefined && body.rules === undefined) addIssue({ message: "must set a tier, rules, or both" });
      for (const [name, limits] of Object.entries(body.rules ?? {})) {
        const rule = clientRules.get(name);
        if (!rule) addIssue(issueAt(body, ["rules", name], `no ${whose} named "${name}"`));
        else if (limits.burst !== undefined && !hasBurst(rule.algorithm)) {
          addIssue(issueAt(body, ["rules", name, "burst"], noBurstProblem(rule.algorithm)));
        }
      }
      if (body.expiresAt !== undefined && body.expiresAt <= Date.now()) addIssue(issueAt(body, ["expiresAt"], "must be in the future"));
    }),
  );
}
