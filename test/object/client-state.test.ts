import { describe, expect, it } from "vitest";
import { ClientState } from "../../src/object/client-state.ts";
import type { DecisionRequest, LeaseGrant, ObjectRule } from "../../src/object/protocol.ts";

const T0 = Date.UTC(2030, 0, 1);

function rule(overrides: Partial<ObjectRule> = {}): ObjectRule {
  return {
    name: "api",
    algorithm: "token-bucket",
    limit: 2,
    periodSeconds: 10,
    burst: 2,
    cost: 1,
    mode: "enforce",
    onError: "allow",
    scope: "client",
    ...overrides,
  };
}

function request(rules: ObjectRule[], overrides: Partial<DecisionRequest> = {}): DecisionRequest {
  return { rules, idleRetentionSeconds: 60, ...overrides };
}

describe("ClientState, without workerd", () => {
  it("admits a request only if every enforcing rule admits it, and a denial charges no rule", () => {
    const state = new ClientState();
    const both = request([rule(), rule({ name: "tight", limit: 1, burst: 1 })]);
    expect(state.decide(both, T0).result.allowed).toBe(true);
    const denied = state.decide(both, T0);
    expect(denied.result.allowed).toBe(false);
    expect(denied.needsWrite).toBe(false);
    // "api" reports its uncharged state: the denial by "tight" took nothing from it.
    expect(denied.result.rules.map((verdict) => [verdict.name, verdict.allowed, verdict.remaining])).toEqual([
      ["api", true, 1],
      ["tight", false, 0],
    ]);
  });

  it("applies the tier in force from each rule's own tier limits: an override's tier before the client's", () => {
    const state = new ClientState();
    const tiered = request([rule({ tiers: { pro: { limit: 10 }, max: { limit: 100 } } })], { tier: "pro" });
    expect(state.decide(tiered, T0).result.rules[0]?.remaining).toBe(9);
    state.setOverride({ tier: "max" });
    // The request spent under "pro" carries over to "max" (docs/algorithms.md, When limits change).
    expect(state.decide(tiered, T0).result.rules[0]?.remaining).toBe(98);
    expect(state.inspect(tiered, T0)).toMatchObject({ tier: "max", override: { tier: "max" } });
  });

  it("is like a new client once every bucket is full again and no override is in force", () => {
    const state = new ClientState();
    state.decide(request([rule()]), T0);
    expect(state.isLikeNew(T0)).toBe(false);
    // One token refills in 5 s (2 per 10 s).
    expect(state.isLikeNew(T0 + 5_000)).toBe(true);
    state.setOverride({ rules: { api: { limit: 5 } }, expiresAt: T0 + 60_000 });
    expect(state.isLikeNew(T0 + 5_000)).toBe(false);
    expect(state.isKeptUntilRemoved(T0)).toBe(false);
    expect(state.cleanupAtMs()).toBe(T0 + 60_000 + 60_000);
  });

  it("stores a bucket charged in advance, so the admissions the reservation covers need no write", () => {
    const state = new ClientState();
    const roomy = request([rule({ limit: 1600, burst: 1600 })]);
    expect(state.decide(roomy, T0).needsWrite).toBe(true);
    const stored = state.toStored(T0);
    // 1600 − 1 admitted − 100 reserved (a sixteenth of the burst), in units of 1/10 000 of a token.
    expect(stored.buckets.api?.state).toMatchObject({ level: 1499 * 10_000 });
    expect(state.decide(roomy, T0).needsWrite).toBe(false);
    expect(new ClientState(stored).decide(roomy, T0).result.rules[0]?.remaining).toBe(1498);
  });
});

describe("ClientState leases", () => {
  const bucket = rule({ limit: 10, periodSeconds: 10, burst: 10 });
  const ask = { requests: 100, lifetimeMs: 60_000 };
  const remainingAt = (state: ClientState, atMs: number) => state.inspect(request([bucket]), atMs).rules[0]?.remaining;

  it("grants at most half of what is left, charged at once, and refills only to what the lease leaves", () => {
    const state = new ClientState();
    const made = state.decide(request([bucket], { lease: ask }), T0);
    // Half of the 10 left (5) leased before the request's own charge: 4 left in the object, and never more than 5
    // while the lease lasts.
    expect(made.result.lease).toMatchObject({ requests: 5, lifetimeMs: 60_000 });
    // The request's verdict counts the leased requests as left: 9, of which the object holds 4.
    expect(made.result.rules[0]?.remaining).toBe(9);
    expect(made.needsWrite).toBe(true);
    expect(remainingAt(state, T0)).toBe(4);
    expect(remainingAt(state, T0 + 30_000)).toBe(5);
    // Not given back, it ends once its lifetime has passed and as long again: its unspent requests are then lost,
    // and the bucket refills on from there.
    expect(remainingAt(state, T0 + 119_999)).toBe(5);
    expect(remainingAt(state, T0 + 125_000)).toBe(10);
  });

  it("counts a lease's spends from when its isolate made them, so that a bucket full meanwhile refilled them", () => {
    const state = new ClientState();
    const lease = state.decide(request([bucket], { lease: ask }), T0).result.lease as LeaseGrant;
    // The lease's 5 spent at once, given back 30 s later: 6 taken at T0 in all, refilled by T0 + 6 s.
    state.giveBack([{ id: lease.id, unspentRequests: 0, spent: [[0, 5]] }], T0 + 30_000);
    expect(remainingAt(state, T0 + 30_000)).toBe(10);
    // Told without its spends, the same lease keeps the bucket at 10 less its 5 until it comes back.
    const untold = new ClientState();
    const held = untold.decide(request([bucket], { lease: ask }), T0).result.lease as LeaseGrant;
    untold.giveBack([{ id: held.id, unspentRequests: 0 }], T0 + 30_000);
    expect(remainingAt(untold, T0 + 30_000)).toBe(5);
  });

  it("counts a spend no earlier than the isolate says, and as before once the grant has left its journal", () => {
    const late = new ClientState();
    const lease = late.decide(request([bucket], { lease: ask }), T0).result.lease as LeaseGrant;
    // Spent 29 s after the grant: full again by then, 5 taken, 1 refilled by T0 + 30 s.
    late.giveBack([{ id: lease.id, unspentRequests: 0, spent: [[29_000, 5]] }], T0 + 30_000);
    expect(remainingAt(late, T0 + 30_000)).toBe(6);
    // A restart forgets the journal: the lease is still counted, its spends from its grant, as without them.
    const state = new ClientState();
    const held = state.decide(request([bucket], { lease: ask }), T0).result.lease as LeaseGrant;
    const restarted = new ClientState(state.toStored(T0));
    restarted.giveBack([{ id: held.id, unspentRequests: 0, spent: [[0, 5]] }], T0 + 30_000);
    expect(remainingAt(restarted, T0 + 30_000)).toBe(5);
  });

  it("refuses a refund past its 5 s even while a lease still out keeps the journal open", () => {
    const state = new ClientState();
    state.decide(request([bucket], { lease: { requests: 100, lifetimeMs: 60_000 } }), T0);
    const made = state.decide(request([bucket], { provisional: true }), T0 + 1_000).result;
    expect(state.refund(made.chargeId as string, T0 + 7_000)).toBe(false);
  });

  it("keeps its leases across a restart from storage", () => {
    const state = new ClientState();
    state.decide(request([bucket], { lease: ask }), T0);
    const restarted = new ClientState(state.toStored(T0));
    expect(remainingAt(restarted, T0 + 30_000)).toBeLessThanOrEqual(5);
  });

  it("takes back what an isolate gives back, and starts a reset bucket at its capacity less what is still leased", () => {
    const state = new ClientState();
    const lease = state.decide(request([bucket], { lease: ask }), T0).result.lease;
    if (!lease) throw new Error("no lease");
    state.reset(T0);
    expect(remainingAt(state, T0)).toBe(5);
    state.decide(request([bucket], { givenBack: [{ id: lease.id, unspentRequests: 3 }] }), T0);
    // The reset bucket held 5; this request took 1 and the 3 given back came home: 7.
    expect(remainingAt(state, T0)).toBe(7);
  });

  it("grants no more than the rule refills in one lifetime, and none to a rule refilling less than one", () => {
    const perMinute = rule({ limit: 60, periodSeconds: 60, burst: 60 });
    expect(new ClientState().decide(request([perMinute], { lease: { requests: 100, lifetimeMs: 5_000 } }), T0).result.lease).toMatchObject({
      requests: 5,
    });
    const daily = rule({ limit: 1000, periodSeconds: 86_400, burst: 1000 });
    expect(new ClientState().decide(request([daily], { lease: { requests: 240, lifetimeMs: 1_000 } }), T0).result.lease).toBeUndefined();
  });

  it("grants none for a sliding window, a shadow rule, or a request it denies", () => {
    const state = new ClientState();
    expect(state.decide(request([rule({ algorithm: "sliding-window-log" })], { lease: ask }), T0).result.lease).toBeUndefined();
    expect(state.decide(request([rule({ name: "shadow", mode: "shadow" })], { lease: ask }), T0).result.lease).toBeUndefined();
    const tiny = rule({ name: "tiny", limit: 1, periodSeconds: 10, burst: 1 });
    state.decide(request([tiny]), T0);
    expect(state.decide(request([tiny], { lease: ask }), T0).result).toMatchObject({ allowed: false });
    expect(state.decide(request([tiny], { lease: ask }), T0).result.lease).toBeUndefined();
  });

  it("refunds a charge exactly across the span a lease kept the bucket below its capacity", () => {
    const state = new ClientState();
    const made = state.decide(request([bucket], { lease: ask, provisional: true }), T0).result;
    // 5 leased, 4 left: the bucket refills to 5 at most while the lease lasts, which it reaches at T0 + 1 s.
    state.decide(request([bucket]), T0 + 2_000);
    expect(remainingAt(state, T0 + 2_000)).toBe(4);
    expect(state.refund(made.chargeId as string, T0 + 2_000)).toBe(true);
    // Without the refunded charge the bucket had been at its 5 since T0 all the same: still 4 after the later one.
    expect(remainingAt(state, T0 + 2_000)).toBe(4);
  });

  it("refunds a charge exactly across the end of a lease", () => {
    const fast = rule({ limit: 10, periodSeconds: 1, burst: 10 });
    const state = new ClientState();
    const made = state.decide(request([fast], { lease: { requests: 100, lifetimeMs: 1_000 }, provisional: true }), T0).result;
    expect(made.lease).toMatchObject({ requests: 5, lifetimeMs: 1_000 });
    // Held at 5 until the lease ends at T0 + 2 s (its lifetime, then as long again for a give-back), refilled from
    // there: 6 at T0 + 2.1 s, 5 after another request.
    state.decide(request([fast]), T0 + 2_100);
    expect(state.refund(made.chargeId as string, T0 + 2_100)).toBe(true);
    expect(state.inspect(request([fast]), T0 + 2_100).rules[0]?.remaining).toBe(5);
  });

  it("refunds a provisional charge exactly while keeping the lease granted with it", () => {
    const state = new ClientState();
    const made = state.decide(request([bucket], { lease: ask, provisional: true }), T0).result;
    expect(made.lease).toMatchObject({ requests: 5 });
    expect(state.refund(made.chargeId as string, T0)).toBe(true);
    // As if only the lease had been granted: 10 − 5.
    expect(remainingAt(state, T0)).toBe(5);
  });

  it("keeps its denials uncached while a provisional charge may be refunded, and caches them once it is confirmed", () => {
    const state = new ClientState();
    const one = rule({ limit: 1, periodSeconds: 3600, burst: 1 });
    const made = state.decide(request([one], { provisional: true }), T0).result;
    expect(made.chargeId).toBeDefined();
    // The charge may still be refunded, which would admit the next request at once: its denial says so.
    expect(state.decide(request([one]), T0).result).toMatchObject({ allowed: false, refundsPending: true });
    // Confirmed (its request admitted everywhere), the charge is final: the denial holds for its whole wait.
    const denied = state.decide(request([one], { confirmed: [made.chargeId as string] }), T0).result;
    expect(denied.allowed).toBe(false);
    expect(denied.refundsPending).toBeUndefined();
    expect(denied.rules[0]?.retryAfterMs).toBe(3_600_000);
    // A confirmed charge is never refunded, whoever asks.
    expect(state.refund(made.chargeId as string, T0)).toBe(false);
  });

  it("keeps its denials uncached while a rule that denies has units out in leases, which a give-back may return", () => {
    const state = new ClientState();
    const made = state.decide(request([bucket], { lease: ask }), T0).result;
    const lease = made.lease as { id: string; requests: number };
    // The 4 the object holds, spent; the lease's 5 are the isolate's.
    for (let i = 0; i < 4; i++) expect(state.decide(request([bucket]), T0).result.allowed).toBe(true);
    expect(state.decide(request([bucket]), T0).result).toMatchObject({ allowed: false, refundsPending: true });
    // Given back unspent, the lease's 5 admit at once what a cached denial would have refused for a second.
    const after = state.decide(request([bucket], { givenBack: [{ id: lease.id, unspentRequests: lease.requests }] }), T0).result;
    expect(after.allowed).toBe(true);
  });
});
