/** How the policy's `dimensions` are written and checked: the keys, besides the client, that rules may count by. */

import * as v from "valibot";
import { KEY_NAME } from "./rule-schema.ts";
import { issueAt, strictFields } from "./schema-issues.ts";
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

const dimensionFields = strictFields({
  from: v.picklist(SOURCES, `must be one of: ${SOURCES.join(", ")}`),
  name: v.optional(v.pipe(v.string("must be a string"), v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be a header or parameter name"))),
  segment: v.optional(
    v.pipe(
      v.number("must be a number"),
      v.check(
        (segment: number) => Number.isInteger(segment) && segment >= 0 && segment <= 31,
        "must be a whole number from 0 to 31 (0 is the first segment after the leading /)",
      ),
    ),
  ),
  field: v.optional(
    v.pipe(
      v.string("must be a string"),
      v.check((field: string) => field.length >= 1 && field.length <= 128, "must be 1-128 characters"),
    ),
  ),
  of: v.optional(
    v.pipe(
      v.array(v.string("must be a dimension's name"), "must be a list of dimensions' names"),
      v.check(
        (of: string[]) => of.length >= 2 && of.length <= 4 && new Set(of).size === of.length,
        "must name 2 to 4 different dimensions",
      ),
    ),
  ),
  lowercase: v.optional(v.boolean("must be true or false"), false),
  whenMissing: v.optional(v.picklist(["reject", "skip"], 'must be "reject" or "skip"'), "reject"),
});

type DimensionFields = v.InferOutput<typeof dimensionFields>;

/** One dimension: where its value comes from, and what a request without one gets. */
const dimensionSchema = v.pipe(
  dimensionFields,
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const dimension = dataset.value;
    for (const [field, sources] of Object.entries(SOURCE_FIELDS)) {
      const needed = (sources as readonly string[]).includes(dimension.from);
      const given = dimension[field as keyof typeof SOURCE_FIELDS] !== undefined;
      const usedWith = sources.map((source) => `"${source}"`).join(" or ");
      if (needed && !given) addIssue(issueAt(dimension, [field], `is required with from: "${dimension.from}"`));
      if (!needed && given) addIssue(issueAt(dimension, [field], `is for from: ${usedWith}, not "${dimension.from}"`));
    }
    if (dimension.from === "combined" && dimension.lowercase)
      addIssue(issueAt(dimension, ["lowercase"], "is for a dimension read from the request: set it on the dimensions this one combines"));
  }),
  v.transform(
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
export const dimensionsSchema = v.optional(
  v.pipe(
    v.record(
      v.pipe(
        v.string(),
        v.regex(KEY_NAME, "dimension names must be 1-32 characters of a-z 0-9 _ -, a letter first"),
        v.check(
          (name: string) => !(BUILT_IN_KEYS as readonly string[]).includes(name),
          `dimension names must not be ${BUILT_IN_KEYS.join(", ")}: those keys are built in`,
        ),
      ),
      dimensionSchema,
    ),
    // Run on values that failed their own checks too, which are not transformed: only a parsed `source` is read.
    v.rawCheck(({ dataset, addIssue }) => {
      const dimensions = dataset.value as Record<string, Partial<Dimension>>;
      for (const [name, { source }] of Object.entries(dimensions)) {
        if (source?.from !== "combined") continue;
        source.of.forEach((part, index) => {
          const combined = dimensions[part]?.source?.from === "combined";
          if (part !== "ip" && (!Object.hasOwn(dimensions, part) || combined))
            addIssue(
              issueAt(
                dimensions,
                [name, "of", index],
                combined
                  ? `"${part}" is combined itself: name the dimensions it combines`
                  : `no dimension named "${part}" (declare it, or use "ip")`,
              ),
            );
        });
      }
    }),
  ),
  {},
);
