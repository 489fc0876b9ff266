import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { createLimiter } from "../../src/core/create-limiter.ts";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { limiterOnClock, meter } from "../client.ts";

/** Each user 3 an hour, each org 2 an hour, everyone 100 an hour: an org's charge waits on the global object's answer. */
const levels = {
  dimensions: { org: { from: "caller" } },
  rules: [
    { name: "per-user", limit: 3, period: "1h" },
    { name: "per-org", key: "org", limit: 2, period: "1h" },
    { name: "everyone", key: "global", limit: 100, period: "1h" },
  ],
  logDecisions: "none",
};

const USERS = ["u1", "u2", "u3", "u4", "u5"];

describe("a shared object's denial, remembered in the isolate", () => {
  it("denies every user of an org that has run out without asking any object, until the org could admit again", async () => {
    const { limiter, clock } = await limiterOnClock(levels, { keys: USERS, dimensions: { org: ["o"] } });
    const call = (user: string) => limiter.limit(user, { keys: { org: "o" } });
    expect((await call("u1")).success).toBe(true);
    expect((await call("u2")).success).toBe(true);
    // The org's 2 are spent, and each admission was confirmed to it with the next call: its denial is final.
    const first = await call("u3");
    expect(first.rules.find((rule) => !rule.allowed)?.name).toBe("per-org");
    const callsBefore = meter.calls;
    const repeated = await call("u4");
    expect(repeated.success).toBe(false);
    expect(repeated.rules.find((rule) => !rule.allowed)?.name).toBe("per-org");
    expect(meter.calls, "no object asked: not u4's, not the org's, not the global one").toBe(callsBefore);
    // One more refills in 30 minutes: just before, still denied from memory; then admitted, by every object.
    clock.advanceMs(30 * 60_000 - 1);
    expect((await call("u5")).success).toBe(false);
    expect(meter.calls).toBe(callsBefore);
    clock.advanceMs(1);
    expect((await call("u5")).success).toBe(true);
    expect(meter.calls).toBeGreaterThan(callsBefore);
    // The users the org denied were charged nothing: u4 has its 3.
    expect((await limiter.inspect("u4")).rules.find((rule) => rule.name === "per-user")?.remaining).toBe(3);
  });

  it("confirms a charge only once every part admitted its call: one the org denies later is still refunded in full", async () => {
    const policy = {
      ...levels,
      rules: [
        { name: "per-user", limit: 10, period: "1h" },
        { name: "per-org", key: "org", limit: 1, period: "1h" },
      ],
    };
    const { limiter, prefix } = await limiterOnClock(policy, { keys: ["racer", "first"], dimensions: { org: ["full", "free"] } });
    expect((await limiter.limit("first", { keys: { org: "full" } })).success).toBe(true);
    // The org "full" holds its answers back until released, so that the racer calls its own object again in between.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const org = env.RATE_LIMITER.getByName(objectNameOf(prefix, `org:${(await UNKEYED_HASHER.clientId("full")).slice("key:".length)}`));
    // Answered only once released: blockConcurrencyWhile holds the event that set it too.
    const blocking = runInDurableObject(org, (_instance, state) => state.blockConcurrencyWhile(() => held));
    const decisionsBefore = meter.decisions;
    const denied = limiter.limit("racer", { keys: { org: "full" } });
    // The racer's object has charged it, provisionally; the org has yet to answer.
    await vi.waitFor(() => expect(meter.decisions).toBe(decisionsBefore + 1));
    expect((await limiter.limit("racer", { keys: { org: "free" } })).success).toBe(true);
    release();
    await blocking;
    expect((await denied).success).toBe(false);
    // The call "full" denied was refunded: only the one "free" admitted is charged.
    expect((await limiter.inspect("racer")).rules.find((rule) => rule.name === "per-user")?.remaining).toBe(9);
  });

  it("asks a shared object that denied lately first: a request it denies again costs the user's object nothing", async () => {
    // Everyone 2 a second, 1 at a time (a token each 500 ms), unleased so that every call reaches the objects.
    const policy = {
      ...levels,
      leases: false,
      rules: [
        { name: "per-user", limit: 5, period: "1h" },
        { name: "everyone", key: "global", limit: 2, period: "1s", burst: 1 },
      ],
    };
    const users = ["g1", "g2", "g3", "g4"];
    const { limiter, clock } = await limiterOnClock(policy, { keys: users });
    expect((await limiter.limit("g1")).success).toBe(true);
    expect((await limiter.limit("g2")).rules.find((rule) => !rule.allowed)?.name).toBe("everyone");
    // 500 ms on, one token has come back: g3 gets it, asked of the global object first, then of g3's own.
    clock.advanceMs(500);
    const admitted = await limiter.limit("g3");
    expect(admitted.success).toBe(true);
    // Its verdicts in the policy's order all the same, as the headers list them.
    expect(admitted.rules.map((rule) => rule.name)).toEqual(["per-user", "everyone"]);
    const callsBefore = meter.calls;
    const denied = await limiter.limit("g4");
    expect(denied.rules.find((rule) => !rule.allowed)?.name).toBe("everyone");
    expect(meter.calls - callsBefore, "one call, the global object's: g4's own was neither charged nor refunded").toBe(1);
    expect((await limiter.inspect("g4")).rules.find((rule) => rule.name === "per-user")?.remaining).toBe(5);
  });

  it("refunds a shared object asked first when the user's own rule then denies", async () => {
    const policy = {
      ...levels,
      leases: false,
      rules: [
        { name: "per-user", limit: 1, period: "1h" },
        { name: "everyone", key: "global", limit: 2, period: "1s", burst: 1 },
      ],
    };
    const { limiter, clock } = await limiterOnClock(policy, { keys: ["spent", "other", "next"] });
    expect((await limiter.limit("spent")).success).toBe(true);
    expect((await limiter.limit("other")).success).toBe(false);
    clock.advanceMs(500);
    // The global object, asked first, charges "spent" its token back provisionally; "spent"'s own rule denies.
    expect((await limiter.limit("spent")).rules.find((rule) => !rule.allowed)?.name).toBe("per-user");
    // The token was refunded: "next" gets it.
    expect((await limiter.limit("next")).success).toBe(true);
  });

  it("keeps a client that denied lately first, so that its repeats cost a contended org nothing", async () => {
    // Denials not cached, so that every call reaches the objects.
    const policy = {
      ...levels,
      rules: [
        { name: "per-user", limit: 5, period: "1h" },
        { name: "per-org", key: "org", limit: 6, period: "1h" },
      ],
    };
    const { limiter } = await limiterOnClock(policy, { keys: ["spent", "big"], dimensions: { org: ["o"] }, cacheDenials: false });
    expect((await limiter.limit("spent", { cost: 5, keys: { org: "o" } })).success).toBe(true);
    // The org, 1 left, denies 3: it is contended.
    expect((await limiter.limit("big", { cost: 3, keys: { org: "o" } })).rules.find((rule) => !rule.allowed)?.name).toBe("per-org");
    // Asked first now, the org admits "spent" provisionally; its own rule denies, and the org is refunded.
    expect((await limiter.limit("spent", { keys: { org: "o" } })).rules.find((rule) => !rule.allowed)?.name).toBe("per-user");
    const callsBefore = meter.calls;
    expect((await limiter.limit("spent", { keys: { org: "o" } })).success).toBe(false);
    expect(meter.calls - callsBefore, "its own object's call alone").toBe(1);
  });

  it("neither remembers nor answers from memory for a limiter that caches no denials, beside one that does", async () => {
    const users = ["n1", "n2", "n3", "n4", "n5"];
    const { limiter: caching, prefix, clock } = await limiterOnClock(levels, { keys: users, dimensions: { org: ["o"] } });
    const strict = createLimiter({ namespace: env.RATE_LIMITER, policy: levels, prefix, clock, cacheDenials: false });
    for (const user of ["n1", "n2"]) expect((await strict.limit(user, { keys: { org: "o" } })).success).toBe(true);
    expect((await strict.limit("n3", { keys: { org: "o" } })).success).toBe(false);
    // The strict limiter's denial was not remembered: the caching one asks the objects.
    let callsBefore = meter.calls;
    expect((await caching.limit("n4", { keys: { org: "o" } })).success).toBe(false);
    expect(meter.calls, "asked, not remembered from the strict limiter").toBeGreaterThan(callsBefore);
    // The caching one's denial is remembered, for it alone: the strict one still asks.
    callsBefore = meter.calls;
    expect((await strict.limit("n5", { keys: { org: "o" } })).success).toBe(false);
    expect(meter.calls, "asked, not answered from the caching limiter's memory").toBeGreaterThan(callsBefore);
  });
});
