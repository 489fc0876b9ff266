import { describe, expect, it } from "vitest";
import { hashSecret, isSameDigest, KeyHasher, keyHasherFor, UNKEYED_HASHER } from "../../src/identity/secret.ts";

describe("secrets", () => {
  it("compares digests in constant time, equal only when they are the same", async () => {
    const digest = await hashSecret("s3cret");
    expect(isSameDigest(digest, await hashSecret("s3cret"))).toBe(true);
    expect(isSameDigest(digest, await hashSecret("s3cret "))).toBe(false);
    expect(isSameDigest(digest, digest.slice(1))).toBe(false);
  });

  it("hashes a key once however many requests carry it at the same time, and remembers its client id", async () => {
    const key = "key-arriving-twice";
    const keys = new KeyHasher();
    expect(keys.known(key)).toBeUndefined();
    const first = keys.clientId(key);
    expect(keys.clientId(key)).toBe(first);
    const clientId = await first;
    expect(clientId).toBe(`key:${await hashSecret(key)}`);
    expect(keys.known(key)).toBe(clientId);
    expect(await keys.clientId(key)).toBe(clientId);
  });
});

describe("keyed hashing", () => {
  it("names a key's client by HMAC-SHA-256 under the secret (RFC 4231-style known answer), not by its SHA-256", async () => {
    // The well-known HMAC-SHA-256 test vector: key "key", message "The quick brown fox jumps over the lazy dog".
    const keyed = new KeyHasher("key");
    const message = "The quick brown fox jumps over the lazy dog";
    expect(await keyed.clientId(message)).toBe("key:f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    expect(await UNKEYED_HASHER.clientId(message)).toBe(`key:${await hashSecret(message)}`);
  });

  it("gives another secret other ids, and keeps one hasher (and its remembered hashes) per secret in a row", async () => {
    const secret = "a-secret-of-32-characters-5f0e7c";
    expect(keyHasherFor(secret)).toBe(keyHasherFor(secret));
    expect(keyHasherFor(undefined)).toBe(UNKEYED_HASHER);
    const ids = await Promise.all(
      [keyHasherFor(secret), keyHasherFor(`${secret}!`), UNKEYED_HASHER].map((keys) => keys.clientId("user-42")),
    );
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^key:[0-9a-f]{64}$/);
  });
});
