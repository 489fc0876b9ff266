import { describe, expect, it } from "vitest";
import { checkHierarchy, type Hierarchy, levelsOf, orgOf, type RecordedDecision } from "../../bench/hierarchy.ts";

const CLIENT = { limit: 1, periodSeconds: 60, burst: 2 };
const HIERARCHY: Hierarchy = { orgs: 2, org: { limit: 1, periodSeconds: 60, burst: 3 }, global: { limit: 1, periodSeconds: 60, burst: 5 } };

/** `count` decisions of one client, arrived and answered at `atMs`. */
function decided(key: string, count: number, atMs = 1_000): RecordedDecision[] {
  return Array.from({ length: count }, () => [atMs, atMs, key] as const);
}

function check(admissions: RecordedDecision[], denials: RecordedDecision[] = []) {
  return checkHierarchy({ admissions, denials, sinceMs: 1_000, spanSeconds: 1, levels: levelsOf(CLIENT, HIERARCHY) });
}

describe("the bench's hierarchy check", () => {
  it("puts client i in org i % orgs, as the load generator names it", () => {
    expect(["zipf-0", "zipf-19", "zipf-41", "zipf-999", "new-abc-60", "hot-client"].map((key) => orgOf(key, 20))).toEqual([
      "org-0",
      "org-19",
      "org-1",
      "org-19",
      "org-0",
      "org-0",
    ]);
  });

  it("finds an org over its bound when each of its clients is within theirs", () => {
    // zipf-0 and zipf-2 are both in org-0: two each is each client's burst, four is one over the org's.
    expect(check([...decided("zipf-0", 2), ...decided("zipf-2", 2)]).overAdmissionByLevel).toEqual({ client: 0, org: 1, global: -1 });
  });

  it("finds everyone over the global bound when every client and org is within theirs", () => {
    // Each org admits its three (two of one client's, one of another's): six is one over everyone's five.
    const admissions = [...decided("zipf-0", 2), ...decided("zipf-2", 1), ...decided("zipf-1", 2), ...decided("zipf-3", 1)];
    expect(check(admissions).overAdmissionByLevel).toEqual({ client: 0, org: 0, global: 1 });
  });

  it("counts only the admissions measured for over-admission, and every admission recorded to explain a denial", () => {
    // Before the first turn (the warm-up), zipf-4 spent its org's budget; then zipf-0, of the same org, is denied.
    const warmUp = decided("zipf-4", 2, 0);
    const result = check([...warmUp, ...decided("zipf-2", 1)], decided("zipf-0", 1));
    expect(result.overAdmissionByLevel.org).toBe(-2);
    expect(result).toMatchObject({ unexplainedDenials: 0, denials: 1 });
  });

  it("explains a denial by whichever level's bound ran out, and counts one that none explains", () => {
    const admissions = [...decided("zipf-0", 1), ...decided("zipf-2", 2)];
    // zipf-0 has a token left, but its org has spent its three: explained. zipf-1's org has spent nothing: not.
    expect(check(admissions, decided("zipf-0", 1))).toMatchObject({ unexplainedDenials: 0, denials: 1 });
    expect(check(admissions, [...decided("zipf-0", 1), ...decided("zipf-1", 1)])).toMatchObject({ unexplainedDenials: 1, denials: 2 });
  });
});
