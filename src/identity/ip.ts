/** IP addresses: one canonical spelling per address, as 128-bit numbers for range checks. */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV4_MAPPED = 0xffff_0000_0000n;
const ALL_ONES = (1n << 128n) - 1n;

/**
 * An IP address in one canonical spelling, or undefined if it is none: IPv4 dotted
 * quads as they are, IPv6 compressed and lowercase (RFC 5952), and IPv4-mapped IPv6
 * (`::ffff:192.0.2.1`) as the IPv4 address it is, so one client has one id.
 */
export function normalizeIp(address: string): string | undefined {
  if (IPV4.test(address)) return address;
  // Only hex digits, colons and dots (an embedded IPv4) may reach the URL parser: anything
  // else, such as "@" or "/", would be parsed as another part of the URL.
  if (!address.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(address)) return undefined;
  let hostname: string;
  try {
    // The URL parser canonicalizes IPv6 and rejects anything that is not one.
    hostname = new URL(`http://[${address}]/`).hostname;
  } catch {
    return undefined;
  }
  if (!hostname.startsWith("[") || !hostname.endsWith("]")) return undefined;
  hostname = hostname.slice(1, -1);
  const value = ipv6ToBigInt(hostname);
  if (value >> 32n === 0xffffn) return bigIntToIpv4(value);
  return hostname;
}

function ipv6ToBigInt(canonical: string): bigint {
  const [head = "", tail = ""] = canonical.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  let hextets = groups(head);
  if (canonical.includes("::")) {
    const rest = groups(tail);
    hextets = [...hextets, ...Array<string>(8 - hextets.length - rest.length).fill("0"), ...rest];
  }
  return hextets.reduce((value, group) => (value << 16n) | BigInt(`0x${group}`), 0n);
}

function bigIntToIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
}

function bigIntToIpv6(value: bigint): string {
  const hextets = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => ((value >> shift) & 0xffffn).toString(16));
  return new URL(`http://[${hextets.join(":")}]/`).hostname.slice(1, -1);
}

/** An address as a 128-bit number; IPv4 maps into ::ffff:0:0/96 so one comparison serves both. */
export function ipToBigInt(address: string): bigint | undefined {
  const normalized = normalizeIp(address);
  if (normalized === undefined) return undefined;
  if (!normalized.includes(":")) return normalized.split(".").reduce((value, octet) => (value << 8n) | BigInt(octet), 0n) | IPV4_MAPPED;
  return ipv6ToBigInt(normalized);
}

/** The mask of a 128-bit prefix of this many bits. */
export function maskOf(prefixBits: number): bigint {
  return prefixBits === 0 ? 0n : ALL_ONES ^ ((1n << BigInt(128 - prefixBits)) - 1n);
}

/** An IP range: the network as a 128-bit number (IPv4 mapped) and its prefix length in those 128 bits. */
export interface Cidr {
  network: bigint;
  prefixBits: number;
}

/** `10.0.0.0/8`, `2001:db8::/32` or a bare address → a range, or undefined if malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [address = "", prefix, ...extra] = text.split("/");
  if (extra.length > 0 || (prefix !== undefined && !/^\d{1,3}$/.test(prefix))) return undefined;
  const value = ipToBigInt(address);
  if (value === undefined) return undefined;
  const isV4 = !normalizeIp(address)?.includes(":");
  const maxBits = isV4 ? 32 : 128;
  const bits = prefix === undefined ? maxBits : Number(prefix);
  if (bits > maxBits) return undefined;
  const prefixBits = isV4 ? bits + 96 : bits;
  return { network: value & maskOf(prefixBits), prefixBits };
}

/** Whether an address falls in a range. */
export function isInRange(address: string, range: Cidr): boolean {
  const value = ipToBigInt(address);
  return value !== undefined && (value & maskOf(range.prefixBits)) === range.network;
}

/**
 * The part of an address that names one subscriber: IPv4 as it is, IPv6 as its
 * network prefix (`2001:db8:1:2::/64` by default), since one subscriber is usually
 * given a whole /64 and could otherwise rotate through 2^64 addresses.
 */
export function subscriberOf(address: string, ipv6PrefixLength: number): string | undefined {
  const normalized = normalizeIp(address);
  if (normalized === undefined || !normalized.includes(":") || ipv6PrefixLength === 128) return normalized;
  return `${bigIntToIpv6(ipv6ToBigInt(normalized) & maskOf(ipv6PrefixLength))}/${ipv6PrefixLength}`;
}
