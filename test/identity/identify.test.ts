import { describe, expect, it } from "vitest";
import { credentialProblem, identifyClient, identifyRequest } from "../../src/identity/identify.ts";
import { DEFAULT_IDENTITY } from "../../src/identity/identity-options.ts";
import { normalizeIp } from "../../src/identity/ip.ts";
import { hashSecret } from "../../src/identity/secret.ts";

describe("identifyClient", () => {
  it("prefers x-api-key over Bearer over CF-Connecting-IP", async () => {
    const all = new Headers({ "x-api-key": "a", Authorization: "Bearer b", "CF-Connecting-IP": "192.0.2.1" });
    const keyOnly = await identifyClient(new Headers({ "x-api-key": "a" }));
    expect(await identifyClient(all)).toEqual(keyOnly);
    const bearer = await identifyClient(new Headers({ Authorization: "Bearer b", "CF-Connecting-IP": "192.0.2.1" }));
    expect(bearer).toEqual(await identifyClient(new Headers({ "x-api-key": "b" })));
    expect(await identifyClient(new Headers({ "CF-Connecting-IP": "192.0.2.1" }))).toEqual({ clientId: "ip:192.0.2.1" });
  });

  it("ignores other Authorization schemes and X-Forwarded-For", async () => {
    const headers = new Headers({ Authorization: "Basic dXNlcjpwYXNz", "X-Forwarded-For": "192.0.2.99", "CF-Connecting-IP": "192.0.2.1" });
    expect(await identifyClient(headers)).toEqual({ clientId: "ip:192.0.2.1" });
    expect(await identifyClient(new Headers({ "X-Forwarded-For": "192.0.2.99" }))).toHaveProperty("problem");
  });

  it("gives one id to one IPv6 address however it is spelled", async () => {
    const long = await identifyClient(new Headers({ "CF-Connecting-IP": "2001:DB8:0:0:0:0:0:1" }));
    expect(long).toEqual({ clientId: "ip:2001:db8::/64" });
  });

  it("limits IPv6 clients by their /64 by default, and by the configured prefix", async () => {
    const a = await identifyClient(new Headers({ "CF-Connecting-IP": "2001:db8:1:2:aaaa::1" }));
    const b = await identifyClient(new Headers({ "CF-Connecting-IP": "2001:db8:1:2:ffff:ffff:ffff:ffff" }));
    const otherSubnet = await identifyClient(new Headers({ "CF-Connecting-IP": "2001:db8:1:3::1" }));
    expect(a).toEqual({ clientId: "ip:2001:db8:1:2::/64" });
    expect(b).toEqual(a);
    expect(otherSubnet).not.toEqual(a);
    const exact = await identifyClient(new Headers({ "CF-Connecting-IP": "2001:db8:1:2:aaaa::1" }), {
      ...DEFAULT_IDENTITY,
      ipv6PrefixLength: 128,
    });
    expect(exact).toEqual({ clientId: "ip:2001:db8:1:2:aaaa::1" });
    const wide = await identifyClient(new Headers({ "CF-Connecting-IP": "2001:db8:1:2::1" }), {
      ...DEFAULT_IDENTITY,
      ipv6PrefixLength: 48,
    });
    expect(wide).toEqual({ clientId: "ip:2001:db8:1::/48" });
  });

  it("treats an IPv4-mapped IPv6 address as the IPv4 client it is", async () => {
    expect(await identifyClient(new Headers({ "CF-Connecting-IP": "::ffff:192.0.2.1" }))).toEqual({ clientId: "ip:192.0.2.1" });
  });

  it("reads the configured key headers, and can turn Bearer and the IP fallback off", async () => {
    const options = { ...DEFAULT_IDENTITY, keyHeaders: ["x-client-token", "x-api-key"], bearer: false, ipFallback: false };
    const viaCustom = await identifyClient(new Headers({ "X-Client-Token": "t1", "x-api-key": "k1" }), options);
    expect(viaCustom).toEqual(await identifyClient(new Headers({ "x-api-key": "t1" })));
    expect(await identifyClient(new Headers({ Authorization: "Bearer b", "CF-Connecting-IP": "192.0.2.1" }), options)).toEqual({
      problem: "no client identity: send an x-client-token header or an x-api-key header",
    });
  });

  it("rejects an unusable credential, or falls back to the IP when configured to", async () => {
    const headers = new Headers({ "x-api-key": "", "CF-Connecting-IP": "192.0.2.5" });
    expect(await identifyClient(headers)).toEqual({ problem: "the x-api-key header is empty" });
    expect(await identifyClient(headers, { ...DEFAULT_IDENTITY, onInvalid: "ip" })).toEqual({ clientId: "ip:192.0.2.5" });
  });
});

describe("normalizeIp", () => {
  it.each([
    ["192.0.2.1", "192.0.2.1"],
    ["2001:db8::1", "2001:db8::1"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["::FFFF:C000:0201", "192.0.2.1"],
    ["256.1.1.1", undefined],
    ["1.2.3", undefined],
    ["010.1.1.1", undefined],
    ["example.com", undefined],
    ["2001:db8::g", undefined],
    ["[::1]", undefined],
    // Found by the fuzz test: "@" once made the URL parser read the address as userinfo.
    ["2001:db8:1:2::1, @0#", undefined],
    ["::1]/x[", undefined],
    ["fe80::1%eth0", undefined],
  ])("%s → %s", (input, expected) => {
    expect(normalizeIp(input)).toBe(expected);
  });
});

describe("identifyRequest", () => {
  it("waits only to hash a key this isolate has not seen", async () => {
    const headers = new Headers({ "x-api-key": `fresh-${crypto.randomUUID()}` });
    const first = identifyRequest(headers);
    expect(first).toBeInstanceOf(Promise);
    const expected = { clientId: `key:${await hashSecret(headers.get("x-api-key") ?? "")}` };
    expect(await first).toEqual(expected);
    expect(identifyRequest(headers)).toEqual(expected);
    expect(identifyRequest(new Headers({ "CF-Connecting-IP": "192.0.2.1" }))).toEqual({ clientId: "ip:192.0.2.1" });
    expect(identifyRequest(new Headers({ Authorization: "Bearer " }))).toEqual({ problem: "the Bearer token is empty" });
  });
});

describe("credentialProblem", () => {
  it.each([
    { value: "k".repeat(256), problem: undefined },
    { value: "k".repeat(257), problem: "the key is longer than 256 bytes" },
    // Two bytes each in UTF-8: the length in characters alone cannot tell.
    { value: "é".repeat(128), problem: undefined },
    { value: "é".repeat(129), problem: "the key is longer than 256 bytes" },
    { value: `${"k".repeat(254)}é`, problem: undefined },
    { value: `${"k".repeat(255)}é`, problem: "the key is longer than 256 bytes" },
  ])("measures $value.length characters in UTF-8 bytes", ({ value, problem }) => {
    expect(credentialProblem("the key", value)).toBe(problem);
  });
});
