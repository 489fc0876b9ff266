import { describe, expect, it } from "vitest";
import { KeyHasher } from "../src/identity/secret.ts";
import { DenialCache } from "../src/middleware/denials.ts";
import type { Decision } from "../src/object/protocol.ts";
import { LeaseTable } from "../src/object-client/lease-table.ts";
import { compilePolicy } from "../src/policy/compiled-policy.ts";
import { parsePolicy } from "../src/policy/load.ts";

const denial: Decision = {
  allowed: false,
  rules: [
    {
      name: "r",
      mode: "enforce",
      allowed: false,
      limit: 1,
      periodSeconds: 60,
      remaining: 0,
      resetSeconds: 60,
      retryAfterSeconds: 60,
      retryAfterMs: 60_000,
    },
  ],
};

describe("what an isolate remembers, under a flood of distinct clients", () => {
  it("keeps at most 10,000 key hashes, and none in flight once they are done", async () => {
    const keys = new KeyHasher();
    for (let batch = 0; batch < 12; batch++) {
      await Promise.all(Array.from({ length: 1_000 }, (_, i) => keys.clientId(`flood-key-${batch}-${i}`)));
    }
    expect(keys.cacheSizes()).toEqual({ remembered: 10_000, hashing: 0 });
  });

  it("keeps cached denials of at most 10,000 clients, each of at most 16 rule sets", () => {
    const cache = new DenialCache();
    for (let i = 0; i < 12_000; i++) cache.set(`key:${i}`, "r", denial, 0, 60_000);
    expect(cache.size).toBe(10_000);
    for (let set = 0; set < 40; set++) cache.set("key:11999", `set-${set}`, denial, 0, 60_000);
    const remembered = Array.from({ length: 40 }, (_, set) => cache.get("key:11999", `set-${set}`, 1)).filter(Boolean);
    expect(remembered.length).toBeLessThanOrEqual(16);
  });

  it("keeps leases of at most 10,000 objects", () => {
    const leases = new LeaseTable();
    for (let i = 0; i < 12_000; i++) {
      const object = `key:${i}`;
      leases.arrive(object, "r", 0);
      leases.arrive(object, "r", 0);
      leases.termsFor(object, "r", 2, 1000, 0, 4_000);
      leases.takeGrant(object, "r", { id: `lease-${i}`, requests: 10, lifetimeMs: 1000 }, denial.rules, [1], 0);
    }
    expect(leases.size).toBe(10_000);
  });

  it("keeps at most 256 rule sets per policy, however many combinations requests match", () => {
    // Nine rules on nine path prefixes: a path naming several of them matches one of 2^9 = 512 sets.
    const prefixes = Array.from({ length: 9 }, (_, i) => `p${i}`);
    const compiled = compilePolicy(
      parsePolicy({ rules: prefixes.map((prefix) => ({ name: prefix, limit: 10, period: "1m", match: { path: `/*/${prefix}/*` } })) }),
    );
    for (let combination = 1; combination < 512; combination++) {
      const path = `/${prefixes.filter((_, bit) => combination & (1 << bit)).join("/x/")}/x/`.replace(/^\/?/, "/x/");
      const set = compiled.ruleSetFor("key:a", new Headers(), "GET", path);
      if (set === "deny-listed") throw new Error("nobody is deny-listed");
      expect(set.rules.length).toBeGreaterThan(0);
    }
    expect(compiled.ruleSetCount).toBe(256);
  });
});
