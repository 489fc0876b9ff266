import type { RateLimiter } from "../object/rate-limiter.ts";
import { withTimeout } from "../runtime/timeout.ts";

/** The namespace of the `RateLimiter` class, as bound in the Worker's environment. */
export type RateLimiterNamespace = DurableObjectNamespace<RateLimiter>;

/** The error of an object that did not answer in time; the rules' onError then decides. */
class ObjectTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`the Durable Object did not answer within ${timeoutMs} ms`);
  }
}

/** Whether workerd marked an error as transient and the object as not overloaded: worth one retry. */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const flags = error as { retryable?: unknown; overloaded?: unknown };
  return flags.retryable === true && flags.overloaded !== true;
}

/**
 * Calls the object named `name` within `timeoutMs`, retrying once on a fresh stub when workerd says
 * that may help (a stub that saw an error is broken for good, so the retry needs a new one).
 */
export async function callObject<T>(
  namespace: RateLimiterNamespace,
  name: string,
  timeoutMs: number,
  call: (stub: DurableObjectStub<RateLimiter>) => Promise<T>,
): Promise<T> {
  const attempt = () => withTimeout(call(namespace.getByName(name)), timeoutMs, () => new ObjectTimeout(timeoutMs));
  try {
    return await attempt();
  } catch (error) {
    if (!isRetryable(error)) throw error;
    return await attempt();
  }
}
