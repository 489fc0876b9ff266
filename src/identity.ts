/** Request → client id. The id names the client's Durable Object, so it must be stable and secret-free. */

/** Longest identity accepted, in UTF-8 bytes. */
export const MAX_IDENTITY_BYTES = 256;

/** Either the client's id, or why the request carries no usable identity. */
export type Identification = { clientId: string } | { problem: string };

// Matching control characters is the point here: they are what a header-borne identity must not contain.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is this pattern's purpose
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** SHA-256 of a secret as lowercase hex, so raw keys never become object names, stored state or log fields. */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function checkCredential(source: string, value: string): string | undefined {
  if (value === "") return `${source} is empty`;
  if (new TextEncoder().encode(value).byteLength > MAX_IDENTITY_BYTES) return `${source} is longer than ${MAX_IDENTITY_BYTES} bytes`;
  if (CONTROL_CHARACTERS.test(value)) return `${source} contains control characters`;
  return undefined;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An IP address in one canonical spelling (IPv6 compressed and lowercase), or undefined if it is none. */
export function normalizeIp(address: string): string | undefined {
  if (IPV4.test(address)) return address;
  if (!address.includes(":")) return undefined;
  try {
    // The URL parser canonicalizes IPv6 per RFC 5952 and rejects anything that is not one.
    const hostname = new URL(`http://[${address}]/`).hostname;
    return hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/**
 * Identifies the client: the `x-api-key` header, else an `Authorization: Bearer`
 * token (both hashed, as `key:<sha256>`), else `CF-Connecting-IP` (`ip:<address>`),
 * which Cloudflare sets and a client cannot forge. `X-Forwarded-For` is never used:
 * any client can write it.
 */
export async function identifyClient(headers: Headers): Promise<Identification> {
  const apiKey = headers.get("x-api-key");
  if (apiKey !== null) {
    const problem = checkCredential("the x-api-key header", apiKey);
    return problem ? { problem } : { clientId: `key:${await hashSecret(apiKey)}` };
  }

  const authorization = headers.get("authorization");
  const bearer = authorization === null ? null : /^Bearer(?:\s+(.*))?$/i.exec(authorization);
  if (bearer) {
    const problem = checkCredential("the Bearer token", (bearer[1] ?? "").trim());
    return problem ? { problem } : { clientId: `key:${await hashSecret((bearer[1] ?? "").trim())}` };
  }

  const connectingIp = headers.get("cf-connecting-ip");
  if (connectingIp !== null) {
    const address = normalizeIp(connectingIp);
    return address ? { clientId: `ip:${address}` } : { problem: "CF-Connecting-IP is not an IP address" };
  }
  return { problem: "no client identity: send an x-api-key header or an Authorization: Bearer token" };
}
