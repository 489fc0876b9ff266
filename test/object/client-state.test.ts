import { describe, expect, it } from "vitest";
import { ClientState } from "../../src/object/client-state.ts";
import type { DecisionRequest, ObjectRule } from "../../src/object/protocol.ts";

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
    expect(state.decide(tiered, T0).result.rules[0]?.remaining).toBe(99);
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
