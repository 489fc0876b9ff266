import { type Cidr, isInRange, parseCidr } from "../identity/ip.ts";

/** A parsed allow or deny list: exact client ids, and IP ranges. */
export interface AccessList {
  clientIds: ReadonlySet<string>;
  ranges: readonly Cidr[];
}

/** Splits list entries into client ids (`key:…`, `ip:…`) and IP ranges. Entries are validated by the policy schema. */
export function parseAccessList(entries: readonly string[]): AccessList {
  const clientIds = new Set<string>();
  const ranges: Cidr[] = [];
  for (const entry of entries) {
    if (entry.startsWith("key:") || entry.startsWith("ip:")) clientIds.add(entry);
    else {
      const range = parseCidr(entry);
      if (range) ranges.push(range);
    }
  }
  return { clientIds, ranges };
}

/** Whether the client, or the address it connects from, is on the list. */
export function isListed(list: AccessList, clientId: string, ip: string | null): boolean {
  if (list.clientIds.has(clientId)) return true;
  return ip !== null && list.ranges.some((range) => isInRange(ip, range));
}
