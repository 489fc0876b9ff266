// node --expose-gc bench/memory.ts: the bytes an isolate holds per remembered client in each of its bounded tables
// (the denial cache, the key hashes, the lease table), measured on V8's heap in Node (the engine workerd embeds) with a forced
// collection before and after filling each table to its bound. Prints one line per table.
import { UNKEYED_HASHER } from "../src/identity/secret.ts";
import { DenialCache } from "../src/middleware/denials.ts";
import type { Decision, RuleVerdict } from "../src/object/protocol.ts";
import { LeaseTable } from "../src/object-client/lease-table.ts";
import { parsePolicy } from "../src/policy/load.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("run with node --expose-gc bench/memory.ts");
  process.exit(2);
}
const collect = gc;

function heapUsed(): number {
  collect();
  collect();
  return process.memoryUsage().heapUsed;
}

const CLIENTS = 10_000;
const policy = parsePolicy({ rules: [{ name: "api", limit: 100, period: "1m" }], logDecisions: "none" });
const denial: Decision = {
  allowed: false,
  rules: [
    {
      name: "api",
      mode: "enforce",
      allowed: false,
      limit: 100,
      periodSeconds: 60,
      remaining: 0,
      resetSeconds: 60,
      retryAfterSeconds: 1,
      retryAfterMs: 600,
    },
  ],
};
const keyOf = (i: number) => `key:${i.toString(16).padStart(64, "0")}`;

// A key's client id: a 32-character API key and its `key:` + SHA-256 hex.
const beforeKeys = heapUsed();
for (let i = 0; i < CLIENTS; i++) await UNKEYED_HASHER.clientId(`sk_live_${i.toString(36).padStart(24, "0")}`);
const keyBytes = (heapUsed() - beforeKeys) / CLIENTS;

// A cached denial as a flood leaves it: remembered, and its response rendered once.
const beforeDenials = heapUsed();
const denials = new DenialCache(CLIENTS);
for (let i = 0; i < CLIENTS; i++) {
  denials.set(keyOf(i), "api", denial, 0, 600);
  denials.answer(keyOf(i), "api", 1, policy);
}
const denialBytes = (heapUsed() - beforeDenials) / CLIENTS;

// A lease held for a client's rule set, as a hot client leaves it: granted, with some spent.
const beforeLeases = heapUsed();
const leases = new LeaseTable(CLIENTS);
const verdict = { ...denial.rules[0], allowed: true, remaining: 50, retryAfterSeconds: 0, retryAfterMs: 0 } as RuleVerdict;
for (let i = 0; i < CLIENTS; i++) {
  const object = keyOf(i);
  leases.arrive(object, "api", 0);
  leases.arrive(object, "api", 0);
  leases.termsFor(object, "api", 2, 1000, 0, 4_000);
  leases.takeGrant(object, "api", { id: crypto.randomUUID(), requests: 40, lifetimeMs: 1000 }, [verdict], [1], 0);
  leases.arrive(object, "api", 1);
}
const leaseBytes = (heapUsed() - beforeLeases) / CLIENTS;

// Every table stays referenced to the end, so that none is collected while another is measured.
if (denials.size !== CLIENTS) throw new Error(`the denial cache holds ${denials.size} clients, not ${CLIENTS}`);
if (leases.size !== CLIENTS) throw new Error(`the lease table holds ${leases.size} objects, not ${CLIENTS}`);
console.log(
  `denial cache: ${Math.round(denialBytes)} bytes per client (one rule set, response rendered); at its bound of ${CLIENTS} clients, ${((denialBytes * CLIENTS) / 2 ** 20).toFixed(1)} MiB`,
);
console.log(
  `key hashes:   ${Math.round(keyBytes)} bytes per key (32-character keys); at its bound of ${CLIENTS} keys, ${((keyBytes * CLIENTS) / 2 ** 20).toFixed(1)} MiB`,
);
console.log(
  `lease table:  ${Math.round(leaseBytes)} bytes per object with a lease (one rule set of one rule); at its bound of ${CLIENTS} objects, ${((leaseBytes * CLIENTS) / 2 ** 20).toFixed(1)} MiB`,
);
