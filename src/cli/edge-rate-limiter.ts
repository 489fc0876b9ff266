#!/usr/bin/env node
// The package's command line, run from a user's project:
//
//   npx edge-rate-limiter check-config                    the RATE_LIMIT_POLICY of ./wrangler.jsonc, .json or .toml
//   npx edge-rate-limiter check-config wrangler.toml      ... of that wrangler config
//   npx edge-rate-limiter check-config --env production   ... of a wrangler environment
//   npx edge-rate-limiter check-config policy.json        a policy as a JSON file
//   npx edge-rate-limiter check-config README.md          every ```json block with "rules" in a Markdown file
//
// It validates exactly as the Worker does and prints every problem by its path.
// Exit code 0: valid; 1: invalid; 2: could not read it (or a usage error).
import { existsSync, readFileSync } from "node:fs";
import { PolicyError, parsePolicy } from "../policy/load.ts";

const USAGE = "usage: edge-rate-limiter check-config [wrangler.jsonc | wrangler.toml | policy.json | file.md] [--env <name>]";

/** Wrangler's own order of preference among its config files. */
const WRANGLER_CONFIGS = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"];

/** A policy to check, with a label for the report. */
interface PolicySource {
  label: string;
  raw: unknown;
}

/** The policies a file holds. */
async function readPolicies(path: string, environment: string | undefined): Promise<PolicySource[]> {
  if (path.endsWith(".md")) {
    const blocks = [...readFileSync(path, "utf8").matchAll(/```json\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
    const policies = blocks.filter((block) => block.includes('"rules"'));
    if (policies.length === 0) throw new Error(`${path}: no \`\`\`json block with "rules"`);
    return policies.map((block, index) => ({ label: `${path} example ${index + 1}`, raw: block }));
  }
  if (path.endsWith(".json") && !WRANGLER_CONFIGS.includes(path.split("/").pop() ?? "")) {
    return [{ label: path, raw: JSON.parse(readFileSync(path, "utf8")) }];
  }
  return [{ label: path, raw: await readWranglerPolicy(path, environment) }];
}

/** RATE_LIMIT_POLICY under `vars` (or an environment's) of a wrangler config, read by wrangler itself: TOML or JSONC. */
async function readWranglerPolicy(path: string, environment: string | undefined): Promise<unknown> {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  let wrangler: typeof import("wrangler");
  try {
    wrangler = await import("wrangler");
  } catch {
    throw new Error(`reading ${path} needs wrangler: install it in this project (npm install --save-dev wrangler)`);
  }
  const { rawConfig } = wrangler.experimental_readRawConfig({ config: path });
  const vars = environment === undefined ? rawConfig.vars : rawConfig.env?.[environment]?.vars;
  if (vars === undefined || !("RATE_LIMIT_POLICY" in vars)) {
    throw new Error(`${path}: no RATE_LIMIT_POLICY under ${environment === undefined ? "vars" : `env.${environment}.vars`}`);
  }
  return vars.RATE_LIMIT_POLICY;
}

/** Checks the policies the arguments name; returns the exit code. */
async function checkConfig(args: string[]): Promise<number> {
  const envFlag = args.indexOf("--env");
  const environment = envFlag >= 0 ? args[envFlag + 1] : undefined;
  if (envFlag >= 0 && environment === undefined) {
    console.error(USAGE);
    return 2;
  }
  const path =
    args.find((arg, index) => !arg.startsWith("--") && (envFlag < 0 || index !== envFlag + 1)) ??
    WRANGLER_CONFIGS.find((name) => existsSync(name)) ??
    "wrangler.toml";

  let policies: PolicySource[];
  try {
    policies = await readPolicies(path, environment);
  } catch (error) {
    console.error(`check-config: cannot read the policy: ${(error as Error).message}`);
    return 2;
  }
  let invalid = 0;
  for (const { label, raw } of policies) {
    try {
      const policy = parsePolicy(raw);
      const names = policy.rules.map(
        (rule) => `${rule.name} (${rule.algorithm}, ${rule.limit}/${rule.periodSeconds}s, ${rule.key}, ${rule.mode})`,
      );
      console.log(`${label}: valid policy with ${policy.rules.length} rule(s): ${names.join("; ")}`);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      invalid++;
      console.error(`${label}: invalid policy, ${error.problems.length} problem(s):`);
      for (const problem of error.problems) console.error(`  ${problem}`);
    }
  }
  return invalid > 0 ? 1 : 0;
}

const [command, ...rest] = process.argv.slice(2);
if (command === "check-config") {
  process.exit(await checkConfig(rest));
} else {
  console.error(USAGE);
  process.exit(2);
}
