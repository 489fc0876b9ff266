// Validates a rate-limit policy offline, exactly as the Worker would, and prints
// every problem by its path. Exit code 0: valid; 1: invalid; 2: could not read it.
//
//   npm run check-config                      the RATE_LIMIT_POLICY in ./wrangler.toml
//   npm run check-config -- other.toml        the RATE_LIMIT_POLICY in another wrangler config
//   npm run check-config -- policy.json       a policy as a JSON file
//   npm run check-config -- --env production  the policy of a wrangler environment
//   npm run check-config -- README.md         every ```json block with "rules" in a Markdown file
import { readFileSync } from "node:fs";
import { experimental_readRawConfig } from "wrangler";
import { PolicyError, parsePolicy } from "../src/policy/load.ts";

/** The policies to check, each with a label for the report. */
function readPolicies(path: string, environment: string | undefined): Array<{ label: string; raw: unknown }> {
  if (path.endsWith(".md")) {
    const blocks = [...readFileSync(path, "utf8").matchAll(/```json\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
    const policies = blocks.filter((block) => block.includes('"rules"'));
    if (policies.length === 0) throw new Error(`${path}: no \`\`\`json block with "rules"`);
    return policies.map((block, index) => ({ label: `${path} example ${index + 1}`, raw: block }));
  }
  return [{ label: path, raw: readPolicy(path, environment) }];
}

function readPolicy(path: string, environment: string | undefined): unknown {
  if (path.endsWith(".json")) return JSON.parse(readFileSync(path, "utf8"));
  const { rawConfig } = experimental_readRawConfig({ config: path });
  const vars = environment === undefined ? rawConfig.vars : rawConfig.env?.[environment]?.vars;
  if (vars === undefined || !("RATE_LIMIT_POLICY" in vars)) {
    throw new Error(`${path}: no RATE_LIMIT_POLICY under [${environment === undefined ? "" : `env.${environment}.`}vars]`);
  }
  return vars.RATE_LIMIT_POLICY;
}

const args = process.argv.slice(2);
const envFlag = args.indexOf("--env");
const environment = envFlag >= 0 ? args[envFlag + 1] : undefined;
const path = args.find((arg, index) => !arg.startsWith("--") && (envFlag < 0 || index !== envFlag + 1)) ?? "wrangler.toml";

let policies: Array<{ label: string; raw: unknown }>;
try {
  policies = readPolicies(path, environment);
} catch (error) {
  console.error(`check-config: cannot read the policy: ${(error as Error).message}`);
  process.exit(2);
}

let invalid = 0;
for (const { label, raw } of policies) {
  try {
    const policy = parsePolicy(raw);
    const names = policy.rules.map(
      (rule) => `${rule.name} (${rule.algorithm}, ${rule.limit}/${rule.periodSeconds}s, ${rule.scope}, ${rule.mode})`,
    );
    console.log(`${label}: valid policy with ${policy.rules.length} rule(s): ${names.join("; ")}`);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    invalid++;
    console.error(`${label}: invalid policy, ${error.problems.length} problem(s):`);
    for (const problem of error.problems) console.error(`  ${problem}`);
  }
}
process.exit(invalid > 0 ? 1 : 0);
