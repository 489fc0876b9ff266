import { describe, expect, it } from "vitest";
import { RecentMap } from "../../src/runtime/recent-map.ts";

describe("RecentMap: the isolate's bounded tables", () => {
  it("forgets the least recently used entry once full, a read counting as a use", () => {
    const map = new RecentMap<number>(2);
    map.set("a", 1);
    map.set("b", 2);
    expect(map.get("a")).toBe(1); // now b is the least recently used
    map.set("c", 3);
    expect([map.get("a"), map.get("b"), map.get("c"), map.size]).toEqual([1, undefined, 3, 2]);
  });

  it("moves an entry set again to the end rather than holding it twice", () => {
    const map = new RecentMap<number>(2);
    map.set("a", 1);
    map.set("b", 2);
    map.set("a", 10);
    map.set("c", 3);
    expect([map.get("a"), map.get("b"), map.get("c"), map.size]).toEqual([10, undefined, 3, 2]);
    map.delete("a");
    expect([map.get("a"), map.size]).toEqual([undefined, 1]);
  });

  it("refuses a size that could hold nothing", () => {
    expect(() => new RecentMap(0)).toThrow("maxSize must be a whole number >= 1");
  });
});
