import { describe, expect, it } from "vitest";
import { hashKey, hashSecret, isSameDigest, keyClientId, knownKeyClientId } from "../../src/identity/secret.ts";

describe("secrets", () => {
  it("compares digests in constant time, equal only when they are the same", async () => {
    const digest = await hashSecret("s3cret");
    expect(isSameDigest(digest, await hashSecret("s3cret"))).toBe(true);
    expect(isSameDigest(digest, await hashSecret("s3cret "))).toBe(false);
    expect(isSameDigest(digest, digest.slice(1))).toBe(false);
  });

  it("hashes a key once however many requests carry it at the same time, and remembers its client id", async () => {
    const key = "key-arriving-twice";
    expect(knownKeyClientId(key)).toBeUndefined();
    const first = hashKey(key);
    expect(hashKey(key)).toBe(first);
    const clientId = await first;
    expect(clientId).toBe(`key:${await hashSecret(key)}`);
    expect(knownKeyClientId(key)).toBe(clientId);
    expect(await keyClientId(key)).toBe(clientId);
  });
});
