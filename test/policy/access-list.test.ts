import { describe, expect, it } from "vitest";
import { ipToBigInt, parseCidr } from "../../src/identity/ip.ts";
import { isListed, parseAccessList } from "../../src/policy/access-list.ts";

describe("access lists", () => {
  const list = parseAccessList([`key:${"b".repeat(64)}`, "ip:192.0.2.9", "10.0.0.0/8", "2001:db8::/32", "198.51.100.7"]);

  it.each([
    [`key:${"b".repeat(64)}`, null, true],
    ["ip:192.0.2.9", "192.0.2.9", true],
    [`key:${"c".repeat(64)}`, "10.200.3.4", true],
    ["ip:11.0.0.1", "11.0.0.1", false],
    ["ip:2001:db8:ffff::1", "2001:db8:ffff::1", true],
    ["ip:2001:db9::1", "2001:db9::1", false],
    ["ip:198.51.100.7", "198.51.100.7", true],
    ["ip:198.51.100.8", "198.51.100.8", false],
    ["ip:::ffff:a00:1", "::ffff:10.0.0.1", true],
  ])("%s from %s listed: %s", (clientId, ip, expected) => {
    expect(isListed(list, clientId, ip)).toBe(expected);
  });

  it.each(["10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "/8", "10.0.0.0/8/1", "10.0.0.0/x"])("rejects the range %s", (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it("spells IPv6 in full however it was written", () => {
    expect(ipToBigInt("2001:db8::1")).toBe(ipToBigInt("2001:0DB8:0:0:0:0:0:1"));
    expect(ipToBigInt("::")).toBe(0n);
  });
});
