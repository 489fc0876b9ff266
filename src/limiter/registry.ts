import { tokenBucket } from "./token-bucket";
import type { Algorithm } from "./types";

/** Every algorithm a rule can name, by its tag. */
export const algorithms = {
  "token-bucket": tokenBucket,
} as const;

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
