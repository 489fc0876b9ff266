import { fixedWindow } from "./fixed-window.ts";
import { gcra } from "./gcra.ts";
import { leakyBucket } from "./leaky-bucket.ts";
import { slidingWindowCounter } from "./sliding-window-counter.ts";
import { slidingWindowLog } from "./sliding-window-log.ts";
import { tokenBucket } from "./token-bucket.ts";
import type { Algorithm } from "./types.ts";

/** Every algorithm a rule can name, by its tag. */
export const algorithms = {
  "token-bucket": tokenBucket,
  gcra,
  "leaky-bucket": leakyBucket,
  "fixed-window": fixedWindow,
  "sliding-window-log": slidingWindowLog,
  "sliding-window-counter": slidingWindowCounter,
} as const;

/** Algorithms whose capacity is `burst`; the window algorithms allow `limit` per window and have none. */
export const algorithmsWithBurst: ReadonlySet<AlgorithmName> = new Set(["token-bucket", "gcra", "leaky-bucket"]);

/** The tag a rule uses to choose its algorithm. */
export type AlgorithmName = keyof typeof algorithms;

/** The names, for schema validation and error messages. */
export const algorithmNames = Object.keys(algorithms) as [AlgorithmName, ...AlgorithmName[]];

/**
 * The algorithm for a tag, with its state type erased. Safe because state is only
 * ever handed back to the algorithm that produced it: stored state carries its tag.
 */
export function algorithmFor(name: AlgorithmName): Algorithm<unknown> {
  return algorithms[name] as Algorithm<unknown>;
}
