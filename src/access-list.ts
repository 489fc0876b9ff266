import { normalizeIp } from "./identity.ts";

/** An IP range: the address as a 128-bit number (IPv4 mapped into ::ffff:0:0/96) and the prefix length. */
interface Cidr {
  network: bigint;
  prefixBits: number;
}

/** A parsed allow or deny list: exact client ids, and IP ranges. */
export interface AccessList {
  clientIds: ReadonlySet<string>;
  ranges: readonly Cidr[];
}

const IPV4_MAPPED = 0xffff_0000_0000n;

/** An address as a 128-bit number; IPv4 addresses map into ::ffff:0:0/96 so one comparison serves both. */
export function ipToBigInt(address: string): bigint | undefined {
  const normalized = normalizeIp(address);
  if (normalized === undefined) return undefined;
  if (!normalized.includes(":")) {
    return normalized.split(".").reduce((value, octet) => (value << 8n) | BigInt(octet), 0n) | IPV4_MAPPED;
  }
  const [head = "", tail = ""] = normalized.split("::");
  const hextets = (part: string) => (part === "" ? [] : part.split(":"));
  let groups = hextets(head);
  if (normalized.includes("::")) {
    const rest = hextets(tail);
    groups = [...groups, ...Array(8 - groups.length - rest.length).fill("0"), ...rest];
  }
  return groups.reduce((value, group) => (value << 16n) | BigInt(`0x${group}`), 0n);
}

/** `10.0.0.0/8`, `2001:db8::/32` or a bare address → a range, or undefined if malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [address = "", prefix, ...extra] = text.split("/");
  if (extra.length > 0) return undefined;
  const value = ipToBigInt(address);
  if (value === undefined) return undefined;
  const isV4 = !address.includes(":");
  const maxBits = isV4 ? 32 : 128;
  if (prefix !== undefined && !/^\d{1,3}$/.test(prefix)) return undefined;
  const bits = prefix === undefined ? maxBits : Number(prefix);
  if (bits > maxBits) return undefined;
  const prefixBits = isV4 ? bits + 96 : bits;
  return { network: value & maskOf(prefixBits), prefixBits };
}

function maskOf(prefixBits: number): bigint {
  return prefixBits === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefixBits)) - 1n);
}

/** Splits list entries into client ids (`key:…`, `ip:…`) and IP ranges. Entries are validated by the config schema. */
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
  if (ip === null || list.ranges.length === 0) return false;
  const value = ipToBigInt(ip);
  if (value === undefined) return false;
  return list.ranges.some((range) => (value & maskOf(range.prefixBits)) === range.network);
}
