/** How the policy's `dimensions` are written and checked: the keys, besides the client, that rules may count by. */

import * as z from "zod/mini";
import { KEY_NAME } from "./rule-schema.ts";
import type { Dimension, DimensionSource } from "./types.ts";

/** Keys a dimension cannot be named: the client's and the global one are built in, and so is `ip`. */
export const BUILT_IN_KEYS = ["client", "global", "ip"] as const;

/** The built-in `ip` dimension: the client's address, which every request has (`CF-Connecting-IP`). */
export const IP_DIMENSION: Dimension = { source: { from: "ip" }, lowercase: false, whenMissing: "reject" };

const SOURCES = ["caller", "header", "query", "path", "body", "combined"] as const;

/** The most of a request body read for a `from: "body"` dimension: a login form is a fraction of it. */
export const MAX_DIMENSION_BODY_BYTES = 64 * 1024;

/** What each source needs besides `from`, and may not have otherwise. */
const SOURCE_FIELDS = { name: ["header", "query"], segment: ["path"], field: ["body"], of: ["combined"] } as const;

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
  field: z.optional(
    z
      .string({ error: "must be a string" })
      .check(z.refine((field: string) => field.length >= 1 && field.length <= 128, { error: "must be 1-128 characters" })),
  ),
  of: z.optional(
    z.array(z.string({ error: "must be a dimension's name" }), { error: "must be a list of dimensions' names" }).check(
      z.refine((of: string[]) => of.length >= 2 && of.length <= 4 && new Set(of).size === of.length, {
        error: "must name 2 to 4 different dimensions",
      }),
    ),
  ),
  lowercase: z._default(z.boolean({ error: "must be true or false" }), false),
  whenMissing: z._default(z.enum(["reject", "skip"], { error: 'must be "reject" or "skip"' }), "reject"),
});

type DimensionFields = z.output<typeof dimensionFields>;

/** One dimension: where its value comes from, and what a request without one gets. */
const dimensionSchema = z.pipe(
  dimensionFields.check(
    z.superRefine((dimension: DimensionFields, ctx) => {
      for (const [field, sources] of Object.entries(SOURCE_FIELDS)) {
        const needed = (sources as readonly string[]).includes(dimension.from);
        const given = dimension[field as keyof typeof SOURCE_FIELDS] !== undefined;
        const usedWith = sources.map((source) => `"${source}"`).join(" or ");
        if (needed && !given) ctx.addIssue({ code: "custom", path: [field], message: `is required with from: "${dimension.from}"` });
        if (!needed && given) ctx.addIssue({ code: "custom", path: [field], message: `is for from: ${usedWith}, not "${dimension.from}"` });
      }
    }),
  ),
  z.transform(
    (dimension: DimensionFields): Dimension => ({
      source: sourceOf(dimension),
      lowercase: dimension.lowercase,
      whenMissing: dimension.whenMissing,
    }),
  ),
);

function sourceOf(dimension: DimensionFields): DimensionSource {
  switch (dimension.from) {
    case "header":
      return { from: "header", name: (dimension.name as string).toLowerCase() };
    case "query":
      return { from: "query", name: dimension.name as string };
    case "path":
      return { from: "path", segment: dimension.segment as number };
    case "body":
      return { from: "body", field: dimension.field as string };
    case "combined":
      return { from: "combined", of: dimension.of as string[] };
    default:
      return { from: "caller" };
  }
}

/** The policy's `dimensions`: name → source; a combined dimension combines others the policy has, or `ip`. */
export const dimensionsSchema = z._default(
  z
    .record(
      z.string().check(
        z.regex(KEY_NAME, { error: "dimension names must be 1-32 characters of a-z 0-9 _ -, a letter first" }),
        z.refine((name: string) => !(BUILT_IN_KEYS as readonly string[]).includes(name), {
          error: `dimension names must not be ${BUILT_IN_KEYS.join(", ")}: those keys are built in`,
        }),
      ),
      dimensionSchema,
    )
    .check(
      // Run on values that failed their own checks too, which are not transformed: only a parsed `source` is read.
      z.superRefine((dimensions: Record<string, Partial<Dimension>>, ctx) => {
        for (const [name, { source }] of Object.entries(dimensions)) {
          if (source?.from !== "combined") continue;
          source.of.forEach((part, index) => {
            const combined = dimensions[part]?.source?.from === "combined";
            if (part !== "ip" && (!Object.hasOwn(dimensions, part) || combined))
              ctx.addIssue({
                code: "custom",
                path: [name, "of", index],
                message: combined
                  ? `"${part}" is combined itself: name the dimensions it combines`
                  : `no dimension named "${part}" (declare it, or use "ip")`,
              });
          });
        }
      }),
    ),
  {},
);
