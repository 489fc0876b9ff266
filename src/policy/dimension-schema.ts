/** How the policy's `dimensions` are written and checked: the keys, besides the client, that rules may count by. */

import * as z from "zod/mini";
import { KEY_NAME } from "./rule-schema.ts";
import type { Dimension, DimensionSource } from "./types.ts";

/** Keys a dimension cannot be named: the client's and the global one are built in, and so is `ip`. */
export const BUILT_IN_KEYS = ["client", "global", "ip"] as const;

/** The built-in `ip` dimension: the client's address, which every request has (`CF-Connecting-IP`). */
export const IP_DIMENSION: Dimension = { source: { from: "ip" }, whenMissing: "reject" };

const SOURCES = ["caller", "header", "query", "path"] as const;

const dimensionFields = z.strictObject({
  from: z.enum(SOURCES, { error: `must be one of: ${SOURCES.join(", ")}` }),
  name: z.optional(
    z
      .string({ error: "must be a string" })
      .check(z.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: "must be a header or parameter name" })),
  ),
  segment: z.optional(
    z.number({ error: "must be a number" }).check(
      z.refine((segment: number) => Number.isInteger(segment) && segment >= 0 && segment <= 31, {
        error: "must be a whole number from 0 to 31 (0 is the first segment after the leading /)",
      }),
    ),
  ),
  whenMissing: z._default(z.enum(["reject", "skip"], { error: 'must be "reject" or "skip"' }), "reject"),
});

type DimensionFields = z.output<typeof dimensionFields>;

/** One dimension: where its value comes from, and what a request without one gets. */
const dimensionSchema = z.pipe(
  dimensionFields.check(
    z.superRefine((dimension: DimensionFields, ctx) => {
      const needsName = dimension.from === "header" || dimension.from === "query";
      if (needsName && dimension.name === undefined)
        ctx.addIssue({ code: "custom", path: ["name"], message: `is required with from: "${dimension.from}"` });
      if (!needsName && dimension.name !== undefined)
        ctx.addIssue({ code: "custom", path: ["name"], message: `is for from: "header" or "query", not "${dimension.from}"` });
      if (dimension.from === "path" && dimension.segment === undefined)
        ctx.addIssue({ code: "custom", path: ["segment"], message: 'is required with from: "path"' });
      if (dimension.from !== "path" && dimension.segment !== undefined)
        ctx.addIssue({ code: "custom", path: ["segment"], message: `is for from: "path", not "${dimension.from}"` });
    }),
  ),
  z.transform((dimension: DimensionFields): Dimension => ({ source: sourceOf(dimension), whenMissing: dimension.whenMissing })),
);

function sourceOf(dimension: DimensionFields): DimensionSource {
  switch (dimension.from) {
    case "header":
      return { from: "header", name: (dimension.name as string).toLowerCase() };
    case "query":
      return { from: "query", name: dimension.name as string };
    case "path":
      return { from: "path", segment: dimension.segment as number };
    default:
      return { from: "caller" };
  }
}

/** The policy's `dimensions`: name → source. */
export const dimensionsSchema = z._default(
  z.record(
    z.string().check(
      z.regex(KEY_NAME, { error: "dimension names must be 1-32 characters of a-z 0-9 _ -, a letter first" }),
      z.refine((name: string) => !(BUILT_IN_KEYS as readonly string[]).includes(name), {
        error: `dimension names must not be ${BUILT_IN_KEYS.join(", ")}: those keys are built in`,
      }),
    ),
    dimensionSchema,
  ),
  {},
);
