/** Settling a held admission once its response has finished (docs/configuration.md, Holds). */

import type { Context } from "hono";
import type { HoldSettlement } from "../object/protocol.ts";
import { MAX_CALL_COST } from "../policy/limits.ts";

/** What the app's options say of a response: whether it succeeded, and what the request cost. */
export interface SettlementOptions {
  requestWasSuccessful?: ((c: Context) => boolean) | undefined;
  settle?: ((c: Context) => number | "refund" | Promise<number | "refund">) | undefined;
}

/**
 * Calls `settle` once the response in `c.res` has finished: at once for one without a body (a HEAD's, a WebSocket's),
 * else when its body has been read to the end, broke off (then it has not succeeded), or was cancelled by a client
 * gone away. The body is passed through as it is, chunk by chunk. The settlement is in the request's `waitUntil`
 * from now, so that it is not lost with a response that outlives the handler.
 */
export function settleWhenFinished(
  c: Context,
  options: SettlementOptions,
  settle: (settlement: HoldSettlement) => Promise<unknown>,
  waitUntil: ((promise: Promise<unknown>) => void) | undefined,
): void {
  const response = c.res;
  let settled: () => void = () => undefined;
  waitUntil?.(
    new Promise<void>((resolve) => {
      settled = resolve;
    }),
  );
  const finish = (broken: boolean) =>
    void settlementOf(c, options, broken)
      .then(settle)
      .finally(() => settled());
  // A HEAD's body is never sent (RFC 9110 §9.3.2), and Hono drops it unread.
  if (response.body === null || c.req.method === "HEAD" || response.status === 101 || response.webSocket) {
    finish(false);
    return;
  }
  const reader = response.body.getReader();
  let finished = false;
  const finishOnce = (broken: boolean) => {
    if (finished) return;
    finished = true;
    finish(broken);
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          finishOnce(false);
        } else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
        finishOnce(true);
      }
    },
    cancel(reason) {
      finishOnce(false);
      return reader.cancel(reason);
    },
  });
  c.res = new Response(body, response);
}

/** The settlement the options give for the response; one they cannot give leaves the charge as it was, logged. */
async function settlementOf(c: Context, options: SettlementOptions, broken: boolean): Promise<HoldSettlement> {
  let successful = !broken;
  try {
    successful &&= options.requestWasSuccessful ? options.requestWasSuccessful(c) === true : c.res.status < 400;
    if (!options.settle) return { successful };
    const settled = await options.settle(c);
    if (settled === "refund") return { successful, cost: 0 };
    if (Number.isSafeInteger(settled) && settled >= 0 && settled <= MAX_CALL_COST) return { successful, cost: settled };
    console.error(
      JSON.stringify({
        event: "settle-invalid",
        detail: `the settle option gave ${String(settled)}, not a whole number from 0 to ${MAX_CALL_COST} or "refund"`,
      }),
    );
  } catch (error) {
    console.error(JSON.stringify({ event: "settle-failed", error: String(error) }));
  }
  return { successful };
}
