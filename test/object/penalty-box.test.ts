import { describe, expect, it } from "vitest";
import { PenaltyBox } from "../../src/object/penalty-box.ts";

const LADDER = { seconds: [60, 600, 3600], after: 1 };
const T0 = Date.UTC(2030, 0, 1);
const s = (seconds: number) => T0 + seconds * 1000;

describe("PenaltyBox", () => {
  it("climbs the ladder when the key comes back within a block's own length after it ends, and starts again after the top's", () => {
    const box = new PenaltyBox();
    expect(box.strike("login", LADDER, 900, s(0))).toBe(s(60));
    expect(box.blockedUntilMs("login", s(59))).toBe(s(60));
    expect(box.blockedUntilMs("login", s(60))).toBe(0);
    // Back 30 s after the 60 s block ended: within its length, one step up.
    expect(box.strike("login", LADDER, 900, s(90))).toBe(s(690));
    // Back 601 s after the 600 s block ended: past its length but within the top's, the same step.
    expect(box.strike("login", LADDER, 900, s(690 + 601))).toBe(s(690 + 601 + 600));
    // Back within that block's length: the top step, and it stays there.
    const third = s(690 + 601 + 600 + 10);
    expect(box.strike("login", LADDER, 900, third)).toBe(third + 3_600_000);
    const fourth = third + 3_600_000 + 1000;
    expect(box.strike("login", LADDER, 900, fourth)).toBe(fourth + 3_600_000);
    // Away for longer than the top step after the block ended: the bottom again.
    const fresh = fourth + 2 * 3_600_000 + 1;
    expect(box.strike("login", LADDER, 900, fresh)).toBe(fresh + 60_000);
  });

  it("blocks after `after` denials within one period of the rule, and counts afresh after a period without one", () => {
    const box = new PenaltyBox();
    const ladder = { seconds: [60], after: 3 };
    expect([box.strike("r", ladder, 60, s(0)), box.strike("r", ladder, 60, s(10))]).toEqual([0, 0]);
    // The third comes 61 s after the first: a new period, and the count starts again from it.
    expect(box.strike("r", ladder, 60, s(61))).toBe(0);
    expect(box.strike("r", ladder, 60, s(62))).toBe(0);
    expect(box.strike("r", ladder, 60, s(63))).toBe(s(123));
  });

  it("keeps what it must store across a restart, and forgets a ladder once its memory has passed", () => {
    const box = new PenaltyBox();
    box.strike("login", LADDER, 900, s(0));
    box.blockClient(s(30));
    const restarted = new PenaltyBox(box.toStored());
    expect(restarted.blockedUntilMs("other", s(10))).toBe(s(30));
    expect(restarted.blockedUntilMs("login", s(10))).toBe(s(60));
    expect(restarted.keepUntilMs()).toBe(s(60 + 3600));
    expect(restarted.trim(s(60 + 3599))).toBe(true);
    expect(restarted.trim(s(60 + 3600))).toBe(false);
    expect(restarted.toStored()).toBeUndefined();
  });

  it("lifts every block, the ladder starting at the bottom", () => {
    const box = new PenaltyBox();
    box.strike("login", LADDER, 900, s(0));
    box.lift();
    expect(box.blockedUntilMs("login", s(1))).toBe(0);
    expect(box.strike("login", LADDER, 900, s(61))).toBe(s(121));
  });
});
