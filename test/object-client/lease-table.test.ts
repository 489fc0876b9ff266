import { describe, expect, it } from "vitest";
import type { RuleVerdict } from "../../src/object/protocol.ts";
import { type HeldLease, LeaseTable } from "../../src/object-client/lease-table.ts";

const T0 = Date.UTC(2030, 0, 1);
const OBJECT = "key:a";
const SET = "api";

/** The verdict of the admission that brought a lease: 9 left counting the lease's requests, full again in 10 s. */
const verdict: RuleVerdict = {
  name: "api",
  periodSeconds: 10,
  mode: "enforce",
  allowed: true,
  limit: 10,
  remaining: 9,
  resetSeconds: 1,
  retryAfterSeconds: 0,
  retryAfterMs: 0,
};

/** A table holding a lease of `requests` for KEY, asked for and granted at T0 for 1 s. */
function leased(requests: number): LeaseTable {
  const table = new LeaseTable();
  table.arrive(OBJECT, SET, T0);
  table.arrive(OBJECT, SET, T0);
  expect(table.termsFor(OBJECT, SET, 1, 1_000, T0, 4_000).ask).toBeDefined();
  table.takeGrant(OBJECT, SET, { id: "lease-1", requests, lifetimeMs: 1_000 }, [verdict], [1], T0);
  return table;
}

describe("LeaseTable", () => {
  it("asks for no lease for a rule set seen once, and for one sized from the rate of a hot one", () => {
    const table = new LeaseTable();
    expect(table.arrive(OBJECT, SET, T0)).toBeUndefined();
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0, 4_000)).toEqual({});
    // Ten requests in 100 ms: a rate of 100/s, so 100 requests in a lease of 1 s.
    for (let i = 0; i < 9; i++) table.arrive(OBJECT, SET, T0 + 100);
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0 + 100, 4_000)).toEqual({ ask: { requests: 100, lifetimeMs: 1_000 } });
    // One ask at a time.
    expect(table.termsFor(OBJECT, SET, 5, 1_000, T0 + 100, 4_000)).toEqual({});
  });

  it("asks as soon as requests queue behind a call in flight, whatever the rate", () => {
    const table = new LeaseTable();
    table.arrive(OBJECT, SET, T0);
    expect(table.termsFor(OBJECT, SET, 3, 1_000, T0 + 10_000, 4_000).ask).toEqual({ requests: 2, lifetimeMs: 1_000 });
  });

  it("ends a lease on its own when its time is up, giving back what it did not spend, once", () => {
    const table = new LeaseTable();
    table.arrive(OBJECT, SET, T0);
    table.arrive(OBJECT, SET, T0);
    table.termsFor(OBJECT, SET, 1, 1_000, T0, 4_000);
    const held = table.takeGrant(OBJECT, SET, { id: "lease-1", requests: 5, lifetimeMs: 1_000 }, [verdict], [1], T0);
    if (!held) throw new Error("no lease held");
    expect(table.spend(OBJECT, SET, T0 + 10)).toBeDefined();
    expect(table.endNow(OBJECT, SET, held)).toEqual([{ id: "lease-1", unspentRequests: 4, spent: [[10, 1]] }]);
    // Ended and gone back once: it admits no more, and neither the next call nor a second end gives it back again.
    expect(table.spend(OBJECT, SET, T0 + 20)).toBeUndefined();
    expect(table.endNow(OBJECT, SET, held)).toBeUndefined();
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0 + 901, 4_000).givenBack).toBeUndefined();
  });

  it("tells with a give-back when it spent each request, never earlier than it did", () => {
    const table = leased(100);
    const held = table.spend(OBJECT, SET, T0 + 5)?.lease;
    if (!held) throw new Error("not admitted from the lease");
    table.spend(OBJECT, SET, T0 + 5);
    table.spend(OBJECT, SET, T0 + 40);
    // Another object denied a request: the spend taken back is the earliest, so those told stay no earlier than made.
    table.unspend(held);
    const [given] = table.endNow(OBJECT, SET, held) ?? [];
    expect(given).toEqual({
      id: "lease-1",
      unspentRequests: 98,
      spent: [
        [5, 1],
        [40, 1],
      ],
    });
    // Past 64 moments, the oldest two become one at the later moment: still no earlier than made.
    const busy = leased(100);
    for (let ms = 0; ms < 70; ms++) busy.spend(OBJECT, SET, T0 + ms);
    const [many] = busy.endNow(OBJECT, SET, (busy.spend(OBJECT, SET, T0 + 70) as { lease: HeldLease }).lease) ?? [];
    expect(many?.spent).toHaveLength(64);
    expect(many?.spent?.[0]).toEqual([7, 8]);
    expect(many?.spent?.reduce((sum, [, requests]) => sum + requests, 0)).toBe(71);
  });

  it("gives a lease back only once no spend of it waits on another part's decision, so that none is lost", async () => {
    const table = leased(3);
    const lease = table.spend(OBJECT, SET, T0 + 5)?.lease;
    if (!lease) throw new Error("not admitted from the lease");
    table.holdSpend(lease);
    table.spend(OBJECT, SET, T0 + 6);
    table.holdSpend(lease);
    // Its time is up, but both requests are still being decided elsewhere: nothing goes back yet.
    expect(table.endNow(OBJECT, SET, lease)).toBeUndefined();
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0 + 950, 4_000).givenBack).toBeUndefined();
    const settled = table.settled(lease);
    // The org denied the first (undone: its spend, the earliest, taken back) and admitted the second.
    table.settleSpend(lease, true);
    table.settleSpend(lease, false);
    await settled;
    expect(table.endNow(OBJECT, SET, lease)).toEqual([{ id: "lease-1", unspentRequests: 2, spent: [[6, 1]] }]);
  });

  it("gives a spent lease back at once, and leaves one a request already carried back to that request", () => {
    const spentOut = leased(1);
    const held = spentOut.spend(OBJECT, SET, T0)?.lease;
    if (!held) throw new Error("not admitted from the lease");
    expect(spentOut.endNow(OBJECT, SET, held)).toEqual([{ id: "lease-1", unspentRequests: 0, spent: [[0, 1]] }]);
    const carried = leased(3);
    const lease = carried.spend(OBJECT, SET, T0)?.lease;
    if (!lease) throw new Error("not admitted from the lease");
    expect(carried.spend(OBJECT, SET, T0 + 950)).toBeUndefined();
    expect(carried.termsFor(OBJECT, SET, 1, 1_000, T0 + 950, 4_000).givenBack).toEqual([
      { id: "lease-1", unspentRequests: 2, spent: [[0, 1]] },
    ]);
    expect(carried.endNow(OBJECT, SET, lease)).toBeUndefined();
  });

  it("admits from a lease until it is spent, each request's remaining counting down from the grant's", () => {
    const table = leased(3);
    const remaining = [1, 2, 3].map(() => table.arrive(OBJECT, SET, T0 + 10)?.decision.rules[0]?.remaining);
    expect(remaining).toEqual([8, 7, 6]);
    expect(table.arrive(OBJECT, SET, T0 + 10)).toBeUndefined();
    // Spent out: given back with the next call, with nothing unspent, and a new lease asked for.
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0 + 10, 4_000)).toMatchObject({
      givenBack: [{ id: "lease-1", unspentRequests: 0, spent: [[10, 3]] }],
      ask: {},
    });
  });

  it("stops a tenth of its lifetime before the object ends it, and gives back what it did not spend", () => {
    const table = leased(50);
    expect(table.spend(OBJECT, SET, T0 + 899)).toBeDefined();
    expect(table.spend(OBJECT, SET, T0 + 900)).toBeUndefined();
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0 + 900, 4_000).givenBack).toEqual([
      { id: "lease-1", unspentRequests: 49, spent: [[899, 1]] },
    ]);
    // Given back once only.
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0 + 900, 4_000).givenBack).toBeUndefined();
  });

  it("takes back a request another object denied, to spend again or give back", () => {
    const table = leased(1);
    const spent = table.spend(OBJECT, SET, T0);
    if (!spent) throw new Error("not admitted from the lease");
    table.unspend(spent.lease);
    expect(table.spend(OBJECT, SET, T0)).toBeDefined();
    expect(table.spend(OBJECT, SET, T0)).toBeUndefined();
    table.unspend(spent.lease);
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0, 4_000).givenBack).toEqual([{ id: "lease-1", unspentRequests: 1 }]);
    // Once given back, a request unspent is lost rather than given back twice.
    table.unspend(spent.lease);
    expect(table.termsFor(OBJECT, SET, 1, 1_000, T0, 4_000).givenBack).toBeUndefined();
  });

  it("lets the next call ask again when one that asked failed or was granted nothing", () => {
    const table = new LeaseTable();
    table.arrive(OBJECT, SET, T0);
    expect(table.termsFor(OBJECT, SET, 2, 1_000, T0, 4_000).ask).toBeDefined();
    table.askFailed(OBJECT, SET);
    expect(table.termsFor(OBJECT, SET, 2, 1_000, T0, 4_000).ask).toBeDefined();
    table.takeGrant(OBJECT, SET, undefined, [verdict], [1], T0);
    expect(table.termsFor(OBJECT, SET, 2, 1_000, T0, 4_000).ask).toBeDefined();
    // An ask never answered (its request died with it) is forgotten once it has had its time.
    expect(table.termsFor(OBJECT, SET, 2, 1_000, T0 + 4_000, 4_000).ask).toBeUndefined();
    expect(table.termsFor(OBJECT, SET, 2, 1_000, T0 + 4_001, 4_000).ask).toBeDefined();
  });

  it("stops at least 50 ms before the object ends a short lease", () => {
    const table = new LeaseTable();
    table.arrive(OBJECT, SET, T0);
    table.termsFor(OBJECT, SET, 2, 200, T0, 4_000);
    table.takeGrant(OBJECT, SET, { id: "short", requests: 10, lifetimeMs: 200 }, [verdict], [1], T0);
    expect(table.spend(OBJECT, SET, T0 + 149)).toBeDefined();
    expect(table.spend(OBJECT, SET, T0 + 150)).toBeUndefined();
  });

  it("remembers at most its bound of objects, least recently used first out, each with at most 16 rule sets", () => {
    const table = new LeaseTable(100);
    for (let i = 0; i < 1_000; i++) table.arrive(`key:${i}`, SET, T0);
    expect(table.size).toBe(100);
    for (let set = 0; set < 40; set++) {
      table.arrive(OBJECT, `set-${set}`, T0);
      table.arrive(OBJECT, `set-${set}`, T0);
    }
    // Each rule set still remembered has seen two requests in the same ms: hot.
    const hot = Array.from({ length: 40 }, (_, set) => table.termsFor(OBJECT, `set-${set}`, 1, 1_000, T0, 4_000).ask).filter(Boolean);
    expect(hot.length).toBeLessThanOrEqual(16);
    expect(hot.length).toBeGreaterThan(0);
  });
});
