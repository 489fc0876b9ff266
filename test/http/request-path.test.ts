import { describe, expect, it } from "vitest";
import { canonicalPath, DEFAULT_PATH_MATCHING, matchingForm } from "../../src/http/request-path.ts";

/** A path as the URL parser leaves it, then canonical. */
const canonicalOf = (path: string) => canonicalPath(new URL(`https://limiter.test${path}`).pathname);

describe("canonicalPath", () => {
  it.each([
    ["/login", "/login"],
    ["//login", "/login"],
    ["///login//", "/login/"],
    ["/%6cogin", "/login"],
    ["/%6C%6F%67%69%6E", "/login"],
    ["/a/../login", "/login"],
    ["/%2e/login", "/login"],
    ["/\\login", "/login"],
    ["/caf%c3%a9", "/caf%C3%A9"],
    ["/100%25", "/100%25"],
    ["/login;x", "/login;x"],
    ["/a%20b", "/a%20b"],
  ])("spells %s as %s", (path, canonical) => {
    expect(canonicalOf(path)).toEqual({ kind: "canonical", path: canonical });
  });

  it.each([
    ["/%2Flogin", "encoded slash"],
    ["/login%2f", "encoded slash"],
    ["/a%5Cb", "encoded slash or backslash"],
    ["/login%09", "control character"],
    ["/login%00", "control character"],
    ["/a%7fb", "control character"],
  ])("refuses %s: %s", (path, problem) => {
    const refused = canonicalOf(path);
    expect(refused.kind).toBe("refused");
    expect(refused.kind === "refused" && refused.problem).toContain(problem);
  });
});

describe("matchingForm", () => {
  it.each([
    ["/login", "/login"],
    ["/login/", "/login"],
    ["/LOGIN", "/login"],
    ["/Login;jsessionid=A1/", "/login"],
    ["/login.", "/login"],
    ["/login%20", "/login"],
    ["/login ", "/login"],
    ["/", "/"],
    ["/a;b/c;d", "/a/c"],
    ["/v1.2/export", "/v1.2/export"],
  ])("folds %s to %s by default", (path, folded) => {
    expect(matchingForm(path, DEFAULT_PATH_MATCHING)).toBe(folded);
  });

  it("folds only what the policy asks", () => {
    expect(matchingForm("/Login;x/", { caseSensitive: true, trailingSlash: "distinct", matrixParameters: "matched" })).toBe("/Login;x/");
  });
});
