import { describe, expect, it } from "vitest";
import { ClientState } from "../../src/object/client-state.ts";
import type { DecisionRequest, ObjectRule } from "../../src/object/protocol.ts";

const T0 = Date.UTC(2030, 0, 1);
const rule: ObjectRule = {
  name: "r",
  algorithm: "token-bucket",
  limit: 5,
  periodSeconds: 1,
  burst: 5,
  cost: 1,
  mode: "enforce",
  onError: "allow",
  scope: "client",
};
const provisional: DecisionRequest = { rules: [rule], idleRetentionSeconds: 60, provisional: true };
const final: DecisionRequest = { rules: [rule], idleRetentionSeconds: 60 };

/** A provisional charge made and refunded at once, as when another object denies the request. */
function chargeAndRefund(state: ClientState, request: DecisionRequest = provisional): void {
  const { result } = state.decide(request, T0);
  expect(result.allowed).toBe(true);
  expect(state.refund(result.chargeId as string, T0)).toBe(true);
}

const remainingOf = (state: ClientState) => state.inspect({ rules: [rule] }, T0).rules[0]?.remaining;
const leasedOf = (state: ClientState) => state.inspect({ rules: [rule] }, T0).rules[0]?.leased ?? 0;

describe("a refund after another refund (docs/architecture.md, invariant 2)", () => {
  it("keeps the charges made between the two: a request of another rule set, not provisional, stays charged", () => {
    const state = new ClientState();
    chargeAndRefund(state);
    expect(state.decide(final, T0).result.allowed).toBe(true);
    expect(state.decide(final, T0).result.allowed).toBe(true);
    chargeAndRefund(state);
    expect(remainingOf(state)).toBe(3);
  });

  it("keeps a lease granted with the second charge: the object and the lease never hold more than the burst", () => {
    const state = new ClientState();
    chargeAndRefund(state);
    chargeAndRefund(state, { ...provisional, lease: { requests: 2, lifetimeMs: 1_000 } });
    expect(leasedOf(state)).toBe(2);
    expect(remainingOf(state)).toBe(3);
  });
});
