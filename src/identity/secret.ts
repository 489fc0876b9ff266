/** Secrets: hashed before they become client ids, stored state or log fields, and compared in constant time. */

import { LRUCache } from "lru-cache";

const utf8 = new TextEncoder();

/** SHA-256 of a secret as lowercase hex, so raw keys never become object names, stored state or log fields. */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8.encode(secret));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether two SHA-256 hex digests (or two `key:` client ids, which hold one) are equal, compared in constant
 * time (`crypto.subtle.timingSafeEqual`, a Workers extension). Both have one length, so neither the length nor
 * the content of a secret leaks.
 */
export function isSameDigest(given: string, expected: string): boolean {
  const a = utf8.encode(given);
  const b = utf8.encode(expected);
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Recently hashed keys, so a busy client is hashed once per isolate rather than per
 * request. It lives in memory only, like the request that carried the key.
 */
const recentKeyIds = new LRUCache<string, string>({ max: 10_000 });

/** Keys being hashed now, so that two requests carrying a new key hash it once. */
const hashing = new Map<string, Promise<string>>();

/** How many keys this isolate remembers the client ids of, and how many it is hashing now: bounded by 10,000 and by the requests in flight. */
export function keyCacheSizes(): { remembered: number; hashing: number } {
  return { remembered: recentKeyIds.size, hashing: hashing.size };
}

/** The client id of an API key or bearer token: its SHA-256, never the key. */
export function keyClientId(key: string): Promise<string> {
  const known = recentKeyIds.get(key);
  return known === undefined ? hashKey(key) : Promise.resolve(known);
}

/** The client id of a key this isolate has hashed already, without waiting; undefined for a key not hashed yet. */
export function knownKeyClientId(key: string): string | undefined {
  return recentKeyIds.get(key);
}

/** Hashes a key not remembered yet into its client id, and remembers it. */
export function hashKey(key: string): Promise<string> {
  let pending = hashing.get(key);
  if (pending === undefined) {
    pending = hashSecret(key).then((digest) => {
      const clientId = `key:${digest}`;
      recentKeyIds.set(key, clientId);
      return clientId;
    });
    hashing.set(key, pending);
    const forget = () => hashing.delete(key);
    pending.then(forget, forget);
  }
  return pending;
}
