import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createLimiter, type LimiterOptions } from "../src/core/create-limiter.ts";
import { identifyClient } from "../src/identity/identify.ts";
import { type KeyHasher, UNKEYED_HASHER } from "../src/identity/secret.ts";
import { createMeter } from "../src/object/meter.ts";
import type { DecisionRequest, ObjectDecision } from "../src/object/protocol.ts";
import type { RateLimiter } from "../src/object/rate-limiter.ts";
import { GLOBAL_OBJECT, objectNameOf } from "../src/object-client/object-name.ts";
import { PolicyError, parsePolicy } from "../src/policy/load.ts";
import { ManualClock } from "./manual-clock.ts";

/** Counts what the objects the tests put on a clock do: tests compare it before and after. */
export const meter = createMeter();

/** Puts an object on `clock`, counted by `meter`, before it decides anything. */
export async function useClock(stub: DurableObjectStub<RateLimiter>, clock: ManualClock): Promise<void> {
  await runInDurableObject(stub, (limiter: RateLimiter) => {
    limiter.clock = clock;
    limiter.meter = meter;
  });
}

/** Puts the object of the client these headers identify on `clock`, counted by `meter`, before it decides anything. */
export async function useClockFor(headers: HeadersInit, clock: ManualClock, keys: KeyHasher = UNKEYED_HASHER): Promise<string> {
  const identity = await identifyClient(new Headers(headers), undefined, keys);
  if (!("clientId" in identity)) throw new Error(identity.problem);
  await useClock(env.RATE_LIMITER.getByName(identity.clientId), clock);
  return identity.clientId;
}

/** One request decided by an object (a stub or, inside `runInDurableObject`, the object itself). */
export async function decideOne(
  object: { decide(batch: DecisionRequest[]): Promise<ObjectDecision[]> },
  request: DecisionRequest,
): Promise<ObjectDecision> {
  const [decision] = await object.decide([request]);
  if (!decision) throw new Error("the object answered no decision");
  return decision;
}

/**
 * The id a misconfigured 500 gives its client, having checked that it tells the client nothing of the configuration
 * but that id, which names the `misconfigured` log line that says what to fix.
 */
export async function misconfigurationOf(response: Response): Promise<string> {
  expect(response.status).toBe(500);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const body = (await response.json()) as { detail: string; misconfiguration: string };
  expect(body.detail).toBe(
    `The rate limiter is misconfigured; its operator finds what to fix in its logs, under "misconfigured" ${body.misconfiguration}.`,
  );
  return body.misconfiguration;
}

/** The statuses of `count` requests sent one after another. */
export async function statuses(send: () => Response | Promise<Response>, count: number): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < count; i++) result.push((await send()).status);
  return result;
}

let limiterPrefixes = 0;

/**
 * A limiter of its own prefix on a manual clock, with the objects it will call on that clock too: the keys', each
 * dimension value's (`{ org: ["acme"] }`) and the global one. `stubs` are the keys' objects, in order.
 */
export async function limiterOnClock(
  policy: unknown,
  { keys = [], dimensions = {}, ...options }: { keys?: string[]; dimensions?: Record<string, string[]> } & Partial<LimiterOptions> = {},
) {
  limiterPrefixes += 1;
  const prefix = `clocked-${limiterPrefixes}`;
  const clock = new ManualClock();
  const hex = async (value: string) => (await UNKEYED_HASHER.clientId(value)).slice("key:".length);
  const keyNames = await Promise.all(keys.map(async (key) => `key:${await hex(key)}`));
  const valueNames = await Promise.all(
    Object.entries(dimensions).flatMap(([name, values]) => values.map(async (value) => `${name}:${await hex(value)}`)),
  );
  const stubs = keyNames.map((name) => env.RATE_LIMITER.getByName(objectNameOf(prefix, name)));
  for (const name of [...keyNames, ...valueNames, GLOBAL_OBJECT])
    await useClock(env.RATE_LIMITER.getByName(objectNameOf(prefix, name)), clock);
  const limiter = createLimiter({ namespace: env.RATE_LIMITER, policy, prefix, clock, ...options });
  return { limiter, clock, stubs, prefix };
}

/** What the checker says of a policy, each problem as `path: message`; none when it is valid. */
export function policyProblemsOf(policy: unknown): string[] {
  try {
    parsePolicy(policy);
    return [];
  } catch (error) {
    if (error instanceof PolicyError) return error.problems;
    throw error;
  }
}
