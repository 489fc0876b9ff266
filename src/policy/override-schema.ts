import * as z from "zod/mini";
import { hasBurst, noBurstProblem } from "./limits.ts";
import { limitsSchema } from "./schema.ts";
import type { Limits, Policy } from "./types.ts";

/** The longest block an operator sets by hand: 30 days. */
export const MAX_MANUAL_BLOCK_SECONDS = 30 * 86_400;

/** Whether a value can be how long an operator blocks a client: a whole number of seconds from 1 to 30 days. */
export function isBlockSeconds(seconds: unknown): seconds is number {
  return Number.isSafeInteger(seconds) && (seconds as number) >= 1 && (seconds as number) <= MAX_MANUAL_BLOCK_SECONDS;
}

/** The admin API's block body: how long to block the client, every rule of it. */
export const blockBodySchema = z.strictObject({
  seconds: z
    .number({ error: "must be a number of seconds" })
    .check(z.refine(isBlockSeconds, { error: `must be a whole number of seconds from 1 to ${MAX_MANUAL_BLOCK_SECONDS} (30 days)` })),
});

/** The admin API's override body: a tier and/or per-rule limits of the client's own rules, and an optional expiry. */
export function overrideSchema(policy: Policy) {
  const clientRules = new Map(policy.rules.filter((rule) => rule.scope === "client").map((rule) => [rule.name, rule]));
  return z
    .strictObject({
      tier: z.optional(
        z.string({ error: "must be a tier name" }).check(
          z.refine((tier: string) => Object.hasOwn(policy.tiers, tier), {
            error: `must be one of the policy's tiers: ${Object.keys(policy.tiers).join(", ") || "(none defined)"}`,
          }),
        ),
      ),
      rules: z.optional(z.record(z.string(), limitsSchema)),
      expiresAt: z.optional(
        z.pipe(
          z.union([z.number(), z.iso.datetime({ offset: true })], { error: "must be an ISO 8601 date-time or epoch milliseconds" }),
          z.transform((value: number | string) => (typeof value === "number" ? value : Date.parse(value))),
        ),
      ),
    })
    .check(
      z.superRefine(
        (body: { tier?: string | undefined; rules?: Record<string, Limits> | undefined; expiresAt?: number | undefined }, ctx) => {
          if (body.tier === undefined && body.rules === undefined)
            ctx.addIssue({ code: "custom", message: "must set a tier, rules, or both" });
          for (const [name, limits] of Object.entries(body.rules ?? {})) {
            const rule = clientRules.get(name);
            if (!rule) ctx.addIssue({ code: "custom", path: ["rules", name], message: `no client rule named "${name}"` });
            else if (limits.burst !== undefined && !hasBurst(rule.algorithm)) {
              ctx.addIssue({ code: "custom", path: ["rules", name, "burst"], message: noBurstProblem(rule.algorithm) });
            }
          }
          if (body.expiresAt !== undefined && body.expiresAt <= Date.now())
            ctx.addIssue({ code: "custom", path: ["expiresAt"], message: "must be in the future" });
        },
      ),
    );
}
