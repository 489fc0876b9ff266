/** Secrets: hashed before they become client ids, stored state or log fields, and compared in constant time. */

import { RecentMap } from "../runtime/recent-map.ts";

const utf8 = new TextEncoder();

/** SHA-256 of a secret as lowercase hex, so raw keys never become object names, stored state or log fields. */
export async function hashSecret(secret: string): Promise<string> {
  return hexOf(await crypto.subtle.digest("SHA-256", utf8.encode(secret)));
}

function hexOf(digest: ArrayBuffer): string {
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

/** The fewest characters, and the fewest different ones, a secret may have: guessing it must be hopeless. */
const MIN_SECRET_LENGTH = 32;
const MIN_SECRET_DISTINCT_CHARACTERS = 12;

/** Why a secret (an admin token, a key-hashing secret) is too weak to rely on, or undefined when it is not. */
export function secretWeakness(secret: string): string | undefined {
  if (secret.length < MIN_SECRET_LENGTH) return `must be at least ${MIN_SECRET_LENGTH} characters (it has ${secret.length})`;
  const distinct = new Set(secret).size;
  if (distinct < MIN_SECRET_DISTINCT_CHARACTERS)
    return `must have at least ${MIN_SECRET_DISTINCT_CHARACTERS} different characters (it has ${distinct})`;
  return undefined;
}

/**
 * Turns keys (API keys, bearer tokens) into client ids: `key:` + the SHA-256 of the key's UTF-8, or, given a secret,
 * + its HMAC-SHA-256 under the secret, so that a dictionary of likely keys (user ids, emails) cannot be hashed to find
 * which ones are clients. Remembers up to 10,000 recently hashed keys, in memory only, like the request that carried
 * the key, so that a busy client is hashed once per isolate rather than per request; and hashes a key that two
 * requests carry at once only once.
 */
export class KeyHasher {
  readonly #recent = new RecentMap<string>(10_000);
  readonly #hashing = new Map<string, Promise<string>>();
  readonly #digest: (key: string) => Promise<string>;

  /** Whether keys are hashed with a secret (HMAC-SHA-256), rather than with plain SHA-256. */
  readonly keyed: boolean;

  constructor(secret?: string) {
    this.keyed = secret !== undefined;
    if (secret === undefined) {
      this.#digest = hashSecret;
      return;
    }
    let hmacKey: Promise<CryptoKey> | undefined;
    this.#digest = async (key) => {
      hmacKey ??= crypto.subtle.importKey("raw", utf8.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      return hexOf(await crypto.subtle.sign("HMAC", await hmacKey, utf8.encode(key)));
    };
  }

  /** The client id of a key this hasher has hashed already, without waiting; undefined for a key not hashed yet. */
  known(key: string): string | undefined {
    return this.#recent.get(key);
  }

  /** The client id of a key: remembered, or hashed now (once, however many callers ask at once) and remembered. */
  clientId(key: string): Promise<string> {
    const known = this.#recent.get(key);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.#hashing.get(key);
    if (pending === undefined) {
      pending = this.#digest(key).then((digest) => {
        const clientId = `key:${digest}`;
        this.#recent.set(key, clientId);
        return clientId;
      });
      this.#hashing.set(key, pending);
      const forget = () => this.#hashing.delete(key);
      pending.then(forget, forget);
    }
    return pending;
  }

  /** How many keys it remembers the client ids of, and how many it is hashing now: bounded by 10,000 and by the requests in flight. */
  cacheSizes(): { remembered: number; hashing: number } {
    return { remembered: this.#recent.size, hashing: this.#hashing.size };
  }
}

/** Keys hashed by plain SHA-256, as when no secret is set. */
export const UNKEYED_HASHER = new KeyHasher();

/** The hasher of the last secret asked for, so that its cache lasts as long as the secret does. */
let lastKeyed: { secret: string; hasher: KeyHasher } | undefined;

/** The hasher for a secret (undefined: `UNKEYED_HASHER`), one per secret in a row rather than one per request. */
export function keyHasherFor(secret: string | undefined): KeyHasher {
  if (secret === undefined) return UNKEYED_HASHER;
  if (lastKeyed?.secret !== secret) lastKeyed = { secret, hasher: new KeyHasher(secret) };
  return lastKeyed.hasher;
}
