import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "check-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLI = join(ROOT, "src/cli/edge-rate-limiter.ts");

/** `edge-rate-limiter check-config ...args`, run in `cwd` (the repository by default). */
function checkConfigIn(cwd: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, "check-config", ...args], { cwd, encoding: "utf8", timeout: 30_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function checkConfig(...args: string[]) {
  return checkConfigIn(ROOT, ...args);
}

describe("npm run check-config", () => {
  it("accepts the policy shipped in wrangler.toml", () => {
    const { status, output } = checkConfig();
    expect(status).toBe(0);
    expect(output).toContain("wrangler.toml: valid policy with 1 rule(s): default");
  });

  it("prints every problem by path and exits 1 for an invalid policy", () => {
    const file = join(dir, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({
        rules: [
          { name: "a", limit: 0, period: "1m", algorithm: "fixed-window", burst: 3 },
          { name: "b", limit: 5, period: "1w" },
        ],
        clients: { "ip:192.0.2.1": "gold" },
      }),
    );
    const { status, output } = checkConfig(file);
    expect(status).toBe(1);
    expect(output).toContain("rules[0].limit: must be an integer >= 1");
    expect(output).toContain("rules[1].period: must be a number of seconds or a duration");
    expect(output).toContain("rules[0].burst: fixed-window has no burst");
    // Cross-field problems are listed in the same run, not only once the fields are fixed.
    expect(output).toContain('clients.ip:192.0.2.1: unknown tier "gold"');
  });

  it("reads a wrangler environment's policy", () => {
    const file = join(dir, "wrangler.toml");
    writeFileSync(
      file,
      [
        'name = "x"',
        'main = "index.js"',
        "[env.production.vars]",
        'RATE_LIMIT_POLICY = \'{"rules":[{"name":"p","limit":2,"period":"1m"}]}\'',
      ].join("\n"),
    );
    expect(checkConfig(file, "--env", "production")).toMatchObject({ status: 0 });
    expect(checkConfig(file)).toMatchObject({ status: 2 });
  });

  it("finds and reads a wrangler.jsonc, as Cloudflare's project generator writes it, comments and all", () => {
    const project = mkdtempSync(join(dir, "jsonc-"));
    writeFileSync(
      join(project, "wrangler.jsonc"),
      [
        "{",
        '  "name": "my-worker", // the generator writes comments',
        '  "main": "src/index.ts",',
        '  "vars": { "RATE_LIMIT_POLICY": { "rules": [{ "name": "api", "limit": 10, "period": "1m" }] } },',
        "}",
      ].join("\n"),
    );
    const valid = checkConfigIn(project);
    expect(valid).toMatchObject({ status: 0 });
    expect(valid.output).toContain("wrangler.jsonc: valid policy with 1 rule(s): api (token-bucket, 10/60s, client, enforce)");
    writeFileSync(join(project, "wrangler.jsonc"), '{ "name": "w", "vars": { "RATE_LIMIT_POLICY": { "rules": [] } } }');
    const invalid = checkConfigIn(project);
    expect(invalid.status).toBe(1);
    expect(invalid.output).toContain("rules: must contain at least one rule");
  });

  it("answers an unknown command with its usage and exit code 2", () => {
    const result = spawnSync(process.execPath, [CLI, "check"], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("usage: edge-rate-limiter check-config");
  });

  it.each([
    ["README.md", 1],
    ["docs/configuration.md", 3],
  ])("checks every example policy in %s", (file, examples) => {
    const { status, output } = checkConfig(file);
    expect(status).toBe(0);
    expect(output.match(/valid policy/g)?.length).toBeGreaterThanOrEqual(examples);
  });
});
