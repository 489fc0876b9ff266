import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { UNKEYED_HASHER } from "../../src/identity/secret.ts";
import { workerEnvOf } from "../../src/worker/env.ts";

describe("workerEnvOf", () => {
  it("reads an environment's variables once, into one object", () => {
    const variables = { ...env };
    expect(workerEnvOf(variables)).toBe(workerEnvOf(variables));
  });

  it("enables the admin API only with ADMIN_TOKEN, under its prefix without a trailing slash", async () => {
    expect(workerEnvOf({ ...env }).admin).toBeUndefined();
    const admin = workerEnvOf({ ...env, ADMIN_TOKEN: "t0ken-9c1e5a3f7b2d8e46-long-enough", ADMIN_PREFIX: "/ops/" } as Env).admin;
    if (admin && "detail" in admin) throw new Error(admin.detail);
    expect(admin?.prefix).toBe("/ops");
    expect([admin?.isAdminPath("/ops"), admin?.isAdminPath("/ops/clients/x"), admin?.isAdminPath("/opsx")]).toEqual([true, true, false]);
    expect([
      await admin?.isAdminToken("t0ken-9c1e5a3f7b2d8e46-long-enough"),
      await admin?.isAdminToken("t0ken-9c1e5a3f7b2d8e46-long-enough "),
      await admin?.isAdminKey("t0ken-9c1e5a3f7b2d8e46-long-enough", UNKEYED_HASHER),
    ]).toEqual([true, false, true]);
  });

  it.each([
    [{ ORIGIN_URL: "ftp://x" }, "origin", "ORIGIN_URL: must be an absolute http(s) URL"],
    [{ ORIGIN_URL: "", ORIGIN: undefined }, "origin", "ORIGIN_URL: not set, and no ORIGIN service binding"],
    [{ ORIGIN_TIMEOUT_SECONDS: "0" }, "originTimeoutMs", "ORIGIN_TIMEOUT_SECONDS: must be a number > 0"],
    [
      { ADMIN_TOKEN: "t0ken-9c1e5a3f7b2d8e46-long-enough", ADMIN_PREFIX: "/" },
      "admin",
      'ADMIN_PREFIX: must be a path such as "/_ratelimit"',
    ],
    [
      { ADMIN_TOKEN: "t0ken-9c1e5a3f7b2d8e46-long-enough", ADMIN_PREFIX: "_ratelimit" },
      "admin",
      'ADMIN_PREFIX: must be a path such as "/_ratelimit"',
    ],
    [
      { ADMIN_TOKEN: "t0ken-9c1e5a3f7b2d8e46-long-enough", ADMIN_PREFIX: "/ops/../x" },
      "admin",
      'ADMIN_PREFIX: must be a path such as "/_ratelimit"',
    ],
    [{ ADMIN_TOKEN: "short-token" }, "admin.refused", "ADMIN_TOKEN: must be at least 32 characters (it has 11)"],
    [{ ADMIN_TOKEN: "ab".repeat(20) }, "admin.refused", "ADMIN_TOKEN: must have at least 12 different characters (it has 2)"],
  ])("says what to fix when %j", (variables, field, detail) => {
    const read = workerEnvOf({ ...env, ...variables } as unknown as Env);
    const [name, part] = field.split(".") as ["origin" | "originTimeoutMs" | "admin", "refused" | undefined];
    const problem = part === undefined ? read[name] : (read[name] as { refused?: unknown } | undefined)?.[part];
    expect((problem as { detail: string }).detail).toContain(detail);
  });

  it("takes ORIGIN_TIMEOUT_SECONDS as a number or a string of one", () => {
    expect(workerEnvOf({ ...env, ORIGIN_TIMEOUT_SECONDS: "2.5" } as unknown as Env).originTimeoutMs).toBe(2500);
    expect(workerEnvOf({ ...env }).originTimeoutMs).toBe(30_000);
  });
});
