import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { objectNameOf } from "../../src/object-client/object-name.ts";
import { limiterOnClock } from "../client.ts";

/**
 * A lease's spends in a rule set with other parts wait for the other parts' answers before the lease may go back
 * (`LeaseTable.holdSpend`), however they were made: from the lease directly, or by the call batcher for requests queued
 * behind the call that brought it.
 */
describe("a lease spent by requests queued behind the call that brought it", () => {
  it("goes back only once the org has answered them, so that each spend the org denied comes back", async () => {
    // The user's rule leases (4 a second), the org's does not (1 an hour); denials not cached, so every call is asked.
    const policy = {
      dimensions: { org: { from: "caller" } },
      rules: [
        { name: "per-user", limit: 4, period: "1s", burst: 8 },
        { name: "per-org", key: "org", limit: 1, period: "1h" },
      ],
      logDecisions: "none",
    };
    const { limiter, prefix } = await limiterOnClock(policy, { keys: ["u"], dimensions: { org: ["o"] }, cacheDenials: false });
    const call = () => limiter.limit("u", { keys: { org: "o" } });
    // The org's one request: every later call is denied there, and refunded or unspent at the user's.
    expect((await call()).success).toBe(true);
    // The user's object holds its answers until released, so that the next calls queue behind the one in flight.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const user = env.RATE_LIMITER.getByName(objectNameOf(prefix, await UNKEYED_HASHER.clientId("u")));
    const blocking = runInDurableObject(user, (_instance, state) => state.blockConcurrencyWhile(() => held));
    // The first asks for a lease (the second request seen); five more queue behind it. Its answer brings a lease of 3
    // (half of the 7 left, floored), which the batcher spends on three of them; the fourth finds it spent.
    const calls = Array.from({ length: 6 }, call);
    release();
    await blocking;
    expect((await Promise.all(calls)).map((result) => result.success)).toEqual([false, false, false, false, false, false]);
    // One more call carries back whatever lease has ended: the user then has all 7 it had after the first call.
    await call();
    const { rules } = await limiter.inspect("u");
    const state = rules.find((rule) => rule.name === "per-user");
    expect((state?.remaining ?? 0) + (state?.leased ?? 0), "what the user's object holds, its leases' units with it").toBe(7);
  });
});
