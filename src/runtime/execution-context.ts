import type { Context } from "hono";

/** The request's ExecutionContext; `app.request()` in tests has none, and nothing here strictly needs it. */
export function executionContextOf(c: Context): Context["executionCtx"] | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

/** The `waitUntil` of an ExecutionContext, when there is one. */
export function waitUntilOf(ctx: Context["executionCtx"] | undefined): ((promise: Promise<unknown>) => void) | undefined {
  return ctx && ((promise) => ctx.waitUntil(promise));
}
