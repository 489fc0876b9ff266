import { describe, expect, it } from "vitest";
import { DEFAULT_PATH_MATCHING, matchingForm, type PathMatching } from "../../src/http/request-path.ts";
import { parsePolicy } from "../../src/policy/load.ts";
import { routeMatcher } from "../../src/policy/route-pattern.ts";
import type { Rule } from "../../src/policy/types.ts";

const isMatching = (rule: Rule, method: string, path: string, matching: PathMatching = DEFAULT_PATH_MATCHING) =>
  routeMatcher(rule.match, matching)(method, matchingForm(path, matching));

const policy = parsePolicy({
  rules: [
    { name: "all", limit: 100, period: "1m" },
    { name: "writes", limit: 10, period: "1m", match: { methods: ["post", "PUT", "DELETE"] } },
    { name: "export", limit: 2, period: "1h", match: { path: "/v1/*/export" } },
    { name: "login", limit: 5, period: "1m", match: { methods: ["POST"], path: "/login" } },
  ],
});

describe("routeMatcher", () => {
  it.each([
    ["GET", "/anything", ["all"]],
    ["post", "/items", ["all", "writes"]],
    ["GET", "/v1/reports/export", ["all", "export"]],
    ["GET", "/v1/a/b/export", ["all", "export"]],
    ["GET", "/v1/reports/export.csv", ["all"]],
    ["POST", "/login", ["all", "writes", "login"]],
    ["GET", "/login", ["all"]],
    ["POST", "/login/", ["all", "writes", "login"]],
    ["POST", "/LOGIN", ["all", "writes", "login"]],
    ["POST", "/login;jsessionid=1", ["all", "writes", "login"]],
    ["POST", "/login.", ["all", "writes", "login"]],
    ["POST", "/login%20", ["all", "writes", "login"]],
    ["POST", "//login", ["all", "writes", "login"]],
    ["GET", "/V1/Reports/EXPORT/", ["all", "export"]],
    ["POST", "/login/x", ["all", "writes"]],
  ])("%s %s matches %j", (method, path, names) => {
    expect(policy.rules.filter((rule) => isMatching(rule, method, path)).map((rule) => rule.name)).toEqual(names);
  });

  it("applies a rule that lists GET to HEAD too, which frameworks answer with the GET handler (RFC 9110 §9.3.2)", () => {
    const [rule] = parsePolicy({ rules: [{ name: "reads", limit: 2, period: 60, match: { methods: ["GET"] } }] }).rules;
    if (!rule) throw new Error("no rule");
    expect(["GET", "HEAD", "head", "POST", "OPTIONS"].map((method) => isMatching(rule, method, "/"))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    const [posts] = parsePolicy({ rules: [{ name: "posts", limit: 2, period: 60, match: { methods: ["POST"] } }] }).rules;
    expect(posts && isMatching(posts, "HEAD", "/")).toBe(false);
  });

  it("keeps what the policy says apart: case, a trailing slash and matrix parameters", () => {
    const [login] = policy.rules.filter((rule) => rule.name === "login");
    if (!login) throw new Error("no rule");
    const strict: PathMatching = { caseSensitive: true, trailingSlash: "distinct", matrixParameters: "matched" };
    expect(["/login", "/LOGIN", "/login/", "/login;x"].map((path) => isMatching(login, "POST", path, strict))).toEqual([
      true,
      false,
      false,
      false,
    ]);
  });

  it("matches a pattern ending in /* without the trailing slash too, when a trailing slash is equivalent", () => {
    const [api] = parsePolicy({ rules: [{ name: "api", limit: 1, period: 1, match: { path: "/api/*" } }] }).rules;
    if (!api) throw new Error("no rule");
    expect(["/api", "/API/x", "//api/x", "/api/", "/apix", "/"].map((path) => isMatching(api, "GET", path))).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it("treats regular-expression characters in patterns literally", () => {
    const [rule] = parsePolicy({ rules: [{ name: "dots", limit: 1, period: 1, match: { path: "/a.b/(c)+" } }] }).rules;
    if (!rule) throw new Error("no rule");
    expect(isMatching(rule, "GET", "/a.b/(c)+")).toBe(true);
    expect(isMatching(rule, "GET", "/aXb/cc")).toBe(false);
  });
});
