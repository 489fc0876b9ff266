import { describe, expect, it } from "vitest";
import { BatchWaitTimeout, CallBatcher } from "../../src/object-client/call-batcher.ts";

/** A callee whose calls stay in flight until the test answers them; it records every batch it was sent and by whom. */
function manualCallee() {
  const calls: Array<{ sender: string; items: number[]; answer: (results: string[]) => void; fail: (error: unknown) => void }> = [];
  const sendAs = (sender: string) => (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ sender, items, answer: resolve, fail: reject });
    });
  const answerWithItems = (index: number) => {
    const call = calls[index];
    if (!call) throw new Error(`no call ${index}`);
    call.answer(call.items.map((item) => `result ${item}`));
  };
  return { calls, sendAs, answerWithItems };
}

/** Lets every settled promise run its continuations. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("CallBatcher", () => {
  it("sends a lone call at once, on its own", async () => {
    const batcher = new CallBatcher<number, string>();
    const callee = manualCallee();
    const result = batcher.call("client", 1, callee.sendAs("a"), 1000);
    expect(callee.calls.map((call) => call.items)).toEqual([[1]]);
    callee.answerWithItems(0);
    expect(await result).toBe("result 1");
    expect(batcher.activeKeys).toBe(0);
  });

  it("sends the calls made while one is in flight together, in order, from the first of them", async () => {
    const batcher = new CallBatcher<number, string>();
    const callee = manualCallee();
    const results = [1, 2, 3, 4].map((item) => batcher.call("client", item, callee.sendAs(`caller ${item}`), 1000));
    expect(callee.calls.map((call) => call.items)).toEqual([[1]]);

    callee.answerWithItems(0);
    await settle();
    expect(callee.calls.map((call) => [call.sender, call.items])).toEqual([
      ["caller 1", [1]],
      ["caller 2", [2, 3, 4]],
    ]);
    callee.answerWithItems(1);
    expect(await Promise.all(results)).toEqual(["result 1", "result 2", "result 3", "result 4"]);
    expect(batcher.activeKeys).toBe(0);
  });

  it("answers the queued items it can answer locally without sending them, and passes the turn on at once", async () => {
    // Even items are answered locally once the first call has returned (as a lease it brought would answer them).
    let leased = false;
    const batcher = new CallBatcher<number, string>({
      answerLocally: (_, item) => (leased && item % 2 === 0 ? `local ${item}` : undefined),
    });
    const callee = manualCallee();
    const results = [1, 2, 3, 4, 6].map((item) => batcher.call("client", item, callee.sendAs(`caller ${item}`), 1000));
    leased = true;
    callee.answerWithItems(0);
    await settle();
    // Caller 2 is answered locally, so the turn passes to caller 3, which sends what is left.
    expect(callee.calls.map((call) => [call.sender, call.items])).toEqual([
      ["caller 1", [1]],
      ["caller 3", [3]],
    ]);
    callee.answerWithItems(1);
    expect(await Promise.all(results)).toEqual(["result 1", "local 2", "result 3", "local 4", "local 6"]);
    expect(batcher.activeKeys).toBe(0);
  });

  it("never makes one key's calls wait for another key's", async () => {
    const batcher = new CallBatcher<number, string>();
    const callee = manualCallee();
    void batcher.call("a", 1, callee.sendAs("a"), 1000);
    void batcher.call("b", 2, callee.sendAs("b"), 1000);
    expect(callee.calls.map((call) => call.items)).toEqual([[1], [2]]);
  });

  it("fails every caller of a failed call, and still sends the calls queued behind it", async () => {
    const batcher = new CallBatcher<number, string>();
    const callee = manualCallee();
    const first = batcher.call("client", 1, callee.sendAs("a"), 1000);
    const second = batcher.call("client", 2, callee.sendAs("b"), 1000);
    const third = batcher.call("client", 3, callee.sendAs("c"), 1000);
    callee.answerWithItems(0);
    await settle();
    const fourth = batcher.call("client", 4, callee.sendAs("d"), 1000);
    callee.calls[1]?.fail(new Error("object overloaded"));
    await expect(second).rejects.toThrow("object overloaded");
    await expect(third).rejects.toThrow("object overloaded");
    await settle();
    expect(callee.calls.map((call) => call.items)).toEqual([[1], [2, 3], [4]]);
    callee.answerWithItems(2);
    expect(await first).toBe("result 1");
    expect(await fourth).toBe("result 4");
  });

  it("fails a batch whose answer does not hold one result per call", async () => {
    const batcher = new CallBatcher<number, string>();
    const callee = manualCallee();
    void batcher.call("client", 1, callee.sendAs("a"), 1000);
    const second = batcher.call("client", 2, callee.sendAs("b"), 1000);
    const third = batcher.call("client", 3, callee.sendAs("c"), 1000);
    callee.answerWithItems(0);
    await settle();
    callee.calls[1]?.answer(["only one"]);
    await expect(second).rejects.toThrow("expected 2 results, got 1");
    await expect(third).rejects.toThrow("expected 2 results, got 1");
  });

  it("fails the calls queued behind one stalled past the wait limit, sends nothing for them, and starts the key afresh", async () => {
    let nowMs = 0;
    const batcher = new CallBatcher<number, string>({ nowMs: () => nowMs });
    const callee = manualCallee();
    void batcher.call("client", 1, callee.sendAs("a"), 1000);
    const queued = batcher.call("client", 2, callee.sendAs("b"), 1000);
    nowMs = 1000;
    const stillQueued = batcher.call("client", 3, callee.sendAs("c"), 1000);
    nowMs = 1001;

    const later = batcher.call("client", 4, callee.sendAs("d"), 1000);
    await expect(queued).rejects.toBeInstanceOf(BatchWaitTimeout);
    await expect(stillQueued).rejects.toBeInstanceOf(BatchWaitTimeout);
    expect(callee.calls.map((call) => call.items)).toEqual([[1], [4]]);
    callee.answerWithItems(1);
    expect(await later).toBe("result 4");
    // The stalled call answering late hands nothing out to the new queue.
    callee.answerWithItems(0);
    expect(batcher.activeKeys).toBe(0);
  });

  it("allows several calls in flight per key when asked to", async () => {
    const batcher = new CallBatcher<number, string>({ maxInFlight: 2 });
    const callee = manualCallee();
    for (const item of [1, 2, 3, 4]) void batcher.call("client", item, callee.sendAs(`caller ${item}`), 1000);
    expect(callee.calls.map((call) => call.items)).toEqual([[1], [2]]);
    callee.answerWithItems(1);
    await settle();
    expect(callee.calls.map((call) => call.items)).toEqual([[1], [2], [3, 4]]);
  });

  it("sends at most maxBatchSize items in one call, and the rest in the next", async () => {
    const batcher = new CallBatcher<number, string>({ maxBatchSize: 2 });
    const callee = manualCallee();
    const results = [1, 2, 3, 4, 5].map((item) => batcher.call("client", item, callee.sendAs(`caller ${item}`), 1000));
    callee.answerWithItems(0);
    await settle();
    callee.answerWithItems(1);
    await settle();
    callee.answerWithItems(2);
    expect(callee.calls.map((call) => call.items)).toEqual([[1], [2, 3], [4, 5]]);
    expect(await Promise.all(results)).toEqual(["result 1", "result 2", "result 3", "result 4", "result 5"]);
  });

  it("fails a queued call when its own timer ends before anyone else comes, and never sends it", async () => {
    let endTimer = () => {};
    const batcher = new CallBatcher<number, string>({ sleep: () => new Promise<void>((resolve) => (endTimer = resolve)) });
    const callee = manualCallee();
    const first = batcher.call("client", 1, callee.sendAs("a"), 1000);
    const queued = batcher.call("client", 2, callee.sendAs("b"), 1000);
    endTimer();
    await expect(queued).rejects.toBeInstanceOf(BatchWaitTimeout);
    callee.answerWithItems(0);
    expect(await first).toBe("result 1");
    await settle();
    expect(callee.calls.map((call) => call.items)).toEqual([[1]]);
  });

  it("neither sends nor hands the turn to a queued call whose own timer has ended", async () => {
    const timers: Array<() => void> = [];
    const batcher = new CallBatcher<number, string>({ sleep: () => new Promise<void>((resolve) => timers.push(resolve)) });
    const callee = manualCallee();
    const first = batcher.call("client", 1, callee.sendAs("a"), 1000);
    const expired = batcher.call("client", 2, callee.sendAs("b"), 1000);
    const waiting = batcher.call("client", 3, callee.sendAs("c"), 1000);
    timers[0]?.();
    await expect(expired).rejects.toBeInstanceOf(BatchWaitTimeout);
    callee.answerWithItems(0);
    await settle();
    expect(callee.calls.map((call) => [call.sender, call.items])).toEqual([
      ["a", [1]],
      ["c", [3]],
    ]);
    callee.answerWithItems(1);
    expect(await first).toBe("result 1");
    expect(await waiting).toBe("result 3");
  });
});
