/** Client ids: `key:<sha256>` for an API key (see `secret.ts`), `ip:<address>` for an address. They name objects, so they hold no secret. */

import { normalizeIp, subscriberOf } from "./ip.ts";

/** How a client id is written, for configuration errors. */
export const CLIENT_ID_FORM =
  '"key:" + the SHA-256 hex of the API key (never the raw key), "ip:" + a normalized IPv4 address, or "ip:" + an IPv6 /64 such as "ip:2001:db8:1:2::/64"';

/** The client id of an address: IPv4 as it is, IPv6 by its prefix; undefined if it is not an address. */
export function ipClientId(address: string, ipv6PrefixLength: number): string | undefined {
  const subscriber = subscriberOf(address, ipv6PrefixLength);
  return subscriber === undefined ? undefined : `ip:${subscriber}`;
}

/** How a dimension's object id is written, for errors: `org:3f0c…`. */
export const DIMENSION_OBJECT_FORM = '"org:" + its value\'s hash';

/**
 * The dimension whose object `id` names (`org` for `org:<sha256 hex>`, as logs show it), if `dimensions` declares it;
 * undefined for anything else.
 */
export function dimensionOfObjectId(id: string, dimensions: object): string | undefined {
  const dimension = /^([^:]+):[0-9a-f]{64}$/.exec(id)?.[1];
  return dimension !== undefined && Object.hasOwn(dimensions, dimension) ? dimension : undefined;
}

/** Whether `id` is a client id as the limiter makes them: never a raw key. */
export function isClientId(id: string): boolean {
  if (/^key:[0-9a-f]{64}$/.test(id)) return true;
  if (!id.startsWith("ip:")) return false;
  const [address = "", prefix] = id.slice(3).split("/");
  if (prefix === undefined) return normalizeIp(address) === address;
  return /^\d{1,3}$/.test(prefix) && subscriberOf(address, Number(prefix)) === id.slice(3);
}
