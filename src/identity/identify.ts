/** Request → client id. The id names the client's Durable Object, so it must be stable and secret-free. */

import type { MaybePromise } from "../runtime/maybe-promise.ts";
import { ipClientId } from "./client-id.ts";
import { DEFAULT_IDENTITY, type IdentityOptions } from "./identity-options.ts";
import { type KeyHasher, UNKEYED_HASHER } from "./secret.ts";

/** Longest identity accepted, in UTF-8 bytes. */
export const MAX_IDENTITY_BYTES = 256;

/** Either the client's id, or why the request carries no usable identity. */
export type Identification = { clientId: string } | { problem: string };

// Matching control characters is the point here: they are what a header-borne identity must not contain.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is this pattern's purpose
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
/**
 * U+FFFD, which workerd puts in place of each byte sequence of a header that is not UTF-8 before the Worker sees it:
 * `cl\xe9` and `cl\xea` both arrive as `cl\ufffd`. Such a key's own bytes are gone, so it cannot name a client of its own.
 */
const REPLACEMENT_CHARACTER = "\ufffd";
const utf8 = new TextEncoder();

/** Whether `value` takes more than `maxBytes` in UTF-8, encoding it only when its length alone cannot tell. */
function isLongerThan(value: string, maxBytes: number): boolean {
  // A UTF-16 code unit takes 1 to 3 bytes in UTF-8 (a surrogate pair, two units, takes 4).
  if (value.length * 3 <= maxBytes) return false;
  if (value.length > maxBytes) return true;
  return utf8.encode(value).byteLength > maxBytes;
}

/** What makes a credential unusable ("is empty", …), or undefined if it can identify a client. */
function flawOf(value: string): string | undefined {
  if (value === "") return "is empty";
  if (isLongerThan(value, MAX_IDENTITY_BYTES)) return `is longer than ${MAX_IDENTITY_BYTES} bytes`;
  if (CONTROL_CHARACTERS.test(value)) return "contains control characters";
  if (value.includes(REPLACEMENT_CHARACTER)) return "is not valid UTF-8 (or contains U+FFFD, which stands for bytes that were not)";
  return undefined;
}

/** Why a credential cannot identify a client, or undefined if it can. */
export function credentialProblem(source: string, value: string): string | undefined {
  const flaw = flawOf(value);
  return flaw === undefined ? undefined : `${source} ${flaw}`;
}

/** A credential a request carries: its value, and the key header it came from (undefined: the Bearer token). */
interface Credential {
  value: string;
  header: string | undefined;
}

/** The credential a request carries, by order of preference; undefined if none. */
function credentialOf(headers: Headers, options: IdentityOptions): Credential | undefined {
  for (const header of options.keyHeaders) {
    const value = headers.get(header);
    if (value !== null) return { value, header };
  }
  const bearer = options.bearer ? bearerTokenOf(headers) : undefined;
  return bearer === undefined ? undefined : { value: bearer, header: undefined };
}

/** The token of `Authorization: Bearer <token>` (RFC 6750 §2.1), trimmed; "" for the scheme alone; undefined for none. */
export function bearerTokenOf(headers: Headers): string | undefined {
  const bearer = /^Bearer(?:\s+(.*))?$/i.exec(headers.get("authorization") ?? "");
  return bearer ? (bearer[1] ?? "").trim() : undefined;
}

/** What the headers say before any hashing: the client, why there is none, or a key this isolate has not hashed yet. */
type IdentityBeforeHashing = Identification | { unhashedKey: string };

function identityBeforeHashing(headers: Headers, options: IdentityOptions, keys: KeyHasher): IdentityBeforeHashing {
  const credential = credentialOf(headers, options);
  if (credential) {
    const flaw = flawOf(credential.value);
    if (flaw === undefined) {
      const known = keys.known(credential.value);
      return known === undefined ? { unhashedKey: credential.value } : { clientId: known };
    }
    if (options.onInvalid === "reject" || !options.ipFallback) {
      return { problem: `${credential.header === undefined ? "the Bearer token" : `the ${credential.header} header`} ${flaw}` };
    }
  }
  if (options.ipFallback) {
    const connectingIp = headers.get("cf-connecting-ip");
    if (connectingIp !== null) {
      const clientId = ipClientId(connectingIp, options.ipv6PrefixLength);
      return clientId ? { clientId } : { problem: "CF-Connecting-IP is not an IP address" };
    }
  }
  const sources = [...options.keyHeaders.map((name) => `an ${name} header`), ...(options.bearer ? ["an Authorization: Bearer token"] : [])];
  return { problem: `no client identity: send ${sources.join(" or ") || "a credential"}` };
}

/**
 * `identifyClient`, answered without waiting whenever it can: always, except for a key this
 * isolate has not hashed yet, which it starts hashing (once, however many requests carry it).
 * The middleware uses it so that a repeated denial is answered in one turn.
 */
export function identifyRequest(
  headers: Headers,
  options: IdentityOptions = DEFAULT_IDENTITY,
  keys: KeyHasher = UNKEYED_HASHER,
): MaybePromise<Identification> {
  const screened = identityBeforeHashing(headers, options, keys);
  return "unhashedKey" in screened ? keys.clientId(screened.unhashedKey).then((clientId) => ({ clientId })) : screened;
}

/**
 * Identifies the client: an API key header, else an `Authorization: Bearer` token
 * (both hashed, as `key:<sha256>`, or `key:<hmac>` by a `KeyHasher` with a secret; the same
 * key sent either way is one client), else `CF-Connecting-IP` (`ip:<address>`), which
 * Cloudflare sets and a client cannot forge. `X-Forwarded-For` is never used: any client can write it.
 * @example
 * const identity = await identifyClient(request.headers); // { clientId: "key:2bd8…" } or { problem: "the x-api-key header is empty" }
 */
export async function identifyClient(
  headers: Headers,
  options: IdentityOptions = DEFAULT_IDENTITY,
  keys: KeyHasher = UNKEYED_HASHER,
): Promise<Identification> {
  return identifyRequest(headers, options, keys);
}
