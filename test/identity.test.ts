import { describe, expect, it } from "vitest";
import { identifyClient, normalizeIp } from "../src/identity.ts";

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
    expect(long).toEqual({ clientId: "ip:2001:db8::1" });
  });
});

describe("normalizeIp", () => {
  it.each([
    ["192.0.2.1", "192.0.2.1"],
    ["2001:db8::1", "2001:db8::1"],
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
    ["256.1.1.1", undefined],
    ["1.2.3", undefined],
    ["010.1.1.1", undefined],
    ["example.com", undefined],
    ["2001:db8::g", undefined],
    ["[::1]", undefined],
  ])("%s → %s", (input, expected) => {
    expect(normalizeIp(input)).toBe(expected);
  });
});
