/** Request → client id. The id names the client's Durable Object, so it must be stable and secret-free. */

import { LRUCache } from "lru-cache";
import { subscriberOf } from "./ip.ts";

/** Longest identity accepted, in UTF-8 bytes. */
export const MAX_IDENTITY_BYTES = 256;

/** Where the client's identity comes from. */
export interface IdentityOptions {
  /** Headers that carry an API key, in order of preference. @default ["x-api-key"] */
  keyHeaders: string[];
  /** Whether an `Authorization: Bearer` token identifies the client. @default true */
  bearer: boolean;
  /** Whether a request without credentials is identified by `CF-Connecting-IP`. @default true */
  ipFallback: boolean;
  /** IPv6 clients are identified by this prefix of their address. @default 64 */
  ipv6PrefixLength: number;
  /** A credential that is present but unusable: answer 400 ("reject"), or use the IP instead ("ip"). @default "reject" */
  onInvalid: "reject" | "ip";
}

/** The identity sources used when the policy sets none. */
export const DEFAULT_IDENTITY: IdentityOptions = {
  keyHeaders: ["x-api-key"],
  bearer: true,
  ipFallback: true,
  ipv6PrefixLength: 64,
  onInvalid: "reject",
};

/** Either the client's id, or why the request carries no usable identity. */
export type Identification = { clientId: string } | { problem: string };

// Matching control characters is the point here: they are what a header-borne identity must not contain.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is this pattern's purpose
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const utf8 = new TextEncoder();

/** SHA-256 of a secret as lowercase hex, so raw keys never become object names, stored state or log fields. */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8.encode(secret));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

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
  return undefined;
}

/** Why a credential cannot identify a client, or undefined if it can. */
export function credentialProblem(source: string, value: string): string | undefined {
  const flaw = flawOf(value);
  return flaw === undefined ? undefined : `${source} ${flaw}`;
}

/**
 * Recently hashed keys, so a busy client is hashed once per isolate rather than per
 * request. It lives in memory only, like the request that carried the key.
 */
const recentKeyIds = new LRUCache<string, string>({ max: 10_000 });

/** The client id of an API key or bearer token: its SHA-256, never the key. */
export async function keyClientId(key: string): Promise<string> {
  return recentKeyIds.get(key) ?? hashKey(key);
}

/** Hashes a key not remembered yet into its client id, and remembers it. */
async function hashKey(key: string): Promise<string> {
  const clientId = `key:${await hashSecret(key)}`;
  recentKeyIds.set(key, clientId);
  return clientId;
}

/** The client id of an address: IPv4 as it is, IPv6 by its prefix; undefined if it is not an address. */
export function ipClientId(address: string, options: Pick<IdentityOptions, "ipv6PrefixLength"> = DEFAULT_IDENTITY): string | undefined {
  const subscriber = subscriberOf(address, options.ipv6PrefixLength);
  return subscriber === undefined ? undefined : `ip:${subscriber}`;
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
  const bearer = options.bearer ? /^Bearer(?:\s+(.*))?$/i.exec(headers.get("authorization") ?? "") : null;
  return bearer ? { value: (bearer[1] ?? "").trim(), header: undefined } : undefined;
}

/** What the headers say before any hashing: the client, why there is none, or a key this isolate has not hashed yet. */
type ScreenedIdentity = Identification | { unhashedKey: string };

function screenIdentity(headers: Headers, options: IdentityOptions): ScreenedIdentity {
  const credential = credentialOf(headers, options);
  if (credential) {
    const flaw = flawOf(credential.value);
    if (flaw === undefined) {
      const known = recentKeyIds.get(credential.value);
      return known === undefined ? { unhashedKey: credential.value } : { clientId: known };
    }
    if (options.onInvalid === "reject" || !options.ipFallback) {
      return { problem: `${credential.header === undefined ? "the Bearer token" : `the ${credential.header} header`} ${flaw}` };
    }
  }
  if (options.ipFallback) {
    const connectingIp = headers.get("cf-connecting-ip");
    if (connectingIp !== null) {
      const clientId = ipClientId(connectingIp, options);
      return clientId ? { clientId } : { problem: "CF-Connecting-IP is not an IP address" };
    }
  }
  const sources = [...options.keyHeaders.map((name) => `an ${name} header`), ...(options.bearer ? ["an Authorization: Bearer token"] : [])];
  return { problem: `no client identity: send ${sources.join(" or ") || "a credential"}` };
}

/**
 * `identifyClient`, answered without waiting whenever it can: always, except for a key
 * this isolate has not hashed yet. The middleware uses it so that a repeated denial
 * is answered in one turn.
 */
export function identifyRequest(headers: Headers, options: IdentityOptions = DEFAULT_IDENTITY): Identification | Promise<Identification> {
  const screened = screenIdentity(headers, options);
  return "unhashedKey" in screened ? hashKey(screened.unhashedKey).then((clientId) => ({ clientId })) : screened;
}

/**
 * `identifyRequest` without hashing anything: undefined for a key this isolate has not
 * hashed yet. For a look that may find nothing (is this client's denial cached?), so
 * that the key is hashed once, by whoever goes on to decide the request.
 */
export function identifyKnownRequest(headers: Headers, options: IdentityOptions = DEFAULT_IDENTITY): Identification | undefined {
  const screened = screenIdentity(headers, options);
  return "unhashedKey" in screened ? undefined : screened;
}

/**
 * Identifies the client: an API key header, else an `Authorization: Bearer` token
 * (both hashed, as `key:<sha256>`; the same secret sent either way is one client),
 * else `CF-Connecting-IP` (`ip:<address>`), which Cloudflare sets and a client cannot
 * forge. `X-Forwarded-For` is never used: any client can write it.
 */
export async function identifyClient(headers: Headers, options: IdentityOptions = DEFAULT_IDENTITY): Promise<Identification> {
  return identifyRequest(headers, options);
}
