/** `RateLimitService`: a drop-in for Cloudflare's rate-limit binding, through a service binding. */

import { WorkerEntrypoint } from "cloudflare:workers";
import { bindsMetricsSink } from "../metrics/metrics-flusher.ts";
import { KEY_SECRET_VARIABLE, keyHasherOf } from "../middleware/limiter-configuration.ts";
import type { ClientReport } from "../object/protocol.ts";
import { loadCompiledPolicy } from "../policy/compiled-policy.ts";
import { PolicyError } from "../policy/load.ts";
import { type Limiter, type LimitOptions, limiterFor, type SettleOptions } from "./create-limiter.ts";
import type { LimitResult } from "./limit-result.ts";

/**
 * What a caller's service binding says of its calls (`props`, set in the caller's wrangler configuration): they are
 * narrowed to it, whatever a call asks.
 */
export interface RateLimitServiceProps {
  /** Keeps this caller's budgets apart from every other caller's: its objects are named `<prefix>/<client id>`. */
  prefix?: string;
  /** The rules this caller's calls apply, by name. A call may name some of them; by default, all of them. */
  rules?: string[];
  /** The tiers this caller's calls may name (`limit({ key, tier })`). By default none: a key's tier is the policy's. */
  tiers?: string[];
}

/** A call of `RateLimitService.limit`: the options of `limit()` that cross a service binding, and the binding's `delta`. */
export interface ServiceLimitOptions extends Pick<LimitOptions, "cost" | "rules" | "tier" | "keys" | "hold"> {
  key: string;
  /** Cloudflare's binding's name for `cost`. */
  delta?: number;
}

/** The bindings `RateLimitService` reads from the Worker that exports it. */
interface ServiceEnv {
  RATE_LIMITER?: unknown;
  RATE_LIMIT_POLICY?: unknown;
  [KEY_SECRET_VARIABLE]?: unknown;
}

/**
 * The limiter behind a service binding, shaped like Cloudflare's rate-limit binding: a caller written for
 * `[[ratelimits]]` calls `env.MY_RATE_LIMITER.limit({ key })` unchanged, and is decided exactly, with the policy
 * (`RATE_LIMIT_POLICY`), objects (`RATE_LIMITER`) and key secret (`RATE_LIMIT_KEY_SECRET`) of the Worker that exports
 * it. Bad input rejects with an error naming the option, as `limit()` does.
 * @example
 * // The caller's wrangler.jsonc, in place of its "ratelimits" entry:
 * // "services": [{ "binding": "MY_RATE_LIMITER", "service": "edge-rate-limiter", "entrypoint": "RateLimitService",
 * //                "props": { "prefix": "checkout", "rules": ["per-user"] } }]
 * const { success } = await env.MY_RATE_LIMITER.limit({ key: userId });
 */
export class RateLimitService extends WorkerEntrypoint<ServiceEnv, RateLimitServiceProps> {
  /** Decides one call for `key` (see `limit()` of `createLimiter`); `success` is what the binding answers. */
  async limit(options: ServiceLimitOptions): Promise<LimitResult> {
    if (typeof options !== "object" || options === null)
      throw new TypeError("limit(): pass { key }, as to Cloudflare's rate-limit binding");
    const { key, delta, cost, rules, tier, keys, hold } = options;
    if (delta !== undefined && cost !== undefined) throw new TypeError("limit(): give cost or delta, not both");
    const amount = cost ?? delta;
    const named = this.rulesOf(rules);
    const allowedTiers = this.ctx.props?.tiers ?? [];
    // A dimension's tier (`keys: { org: { key, tier } }`) is named as the client's is: only within props.tiers.
    const dimensionTiers = Object.entries(typeof keys === "object" && keys !== null ? keys : {}).flatMap(([name, value]) =>
      typeof value === "object" && value !== null && value.tier !== undefined ? [[`keys.${name}.tier`, value.tier] as const] : [],
    );
    for (const [option, named] of [["tier", tier] as const, ...dimensionTiers]) {
      if (named !== undefined && !allowedTiers.includes(named))
        throw new TypeError(
          `limit(): ${option}: this binding may name ${allowedTiers.length > 0 ? `only ${allowedTiers.join(", ")}` : "no tier"} (props.tiers)`,
        );
    }
    const result = await this.limiter().limit(key, {
      ...(amount !== undefined ? { cost: amount } : {}),
      ...(tier !== undefined ? { tier } : {}),
      ...(named !== undefined ? { rules: named } : {}),
      ...(keys !== undefined ? { keys } : {}),
      ...(hold !== undefined ? { hold } : {}),
      ctx: this.ctx,
    });
    // A plain object, headers included: RPC carries no class instance.
    return { ...result, headers: result.headers };
  }

  /** Settles a held call (`result.hold`) once its outcome is known (see `settle()` of `createLimiter`). */
  async settle(hold: string | undefined, settlement: SettleOptions = {}): Promise<boolean> {
    return this.limiter().settle(hold, settlement);
  }

  /** Blocks the key for `seconds` under every rule (see `block()` of `createLimiter`), within the caller's prefix. */
  async block(key: string, options: { seconds: number }): Promise<void> {
    this.mayActOnEveryRule("block");
    return this.limiter().block(key, options);
  }

  /** Lifts every block of the key, an operator's and the penalty boxes', within the caller's prefix. */
  async unblock(key: string): Promise<void> {
    this.mayActOnEveryRule("unblock");
    return this.limiter().unblock(key);
  }

  /** A block is the key's under every rule: a caller whose props narrow it to some rules may neither set nor lift one. */
  private mayActOnEveryRule(call: string): void {
    const allowed = this.ctx.props?.rules;
    if (allowed !== undefined)
      throw new TypeError(
        `${call}(): this binding may use only ${allowed.join(", ")} (props.rules), and a block is the key's under every rule`,
      );
  }

  /** The key's state under every client rule this caller may use, consuming nothing. */
  async inspect(key: string): Promise<ClientReport & { client: string }> {
    const report = await this.limiter().inspect(key);
    const allowed = this.ctx.props?.rules;
    return allowed === undefined ? report : { ...report, rules: report.rules.filter((rule) => allowed.includes(rule.name)) };
  }

  /** Starts the key afresh under every rule this caller may use, or those named. */
  async reset(key: string, options: { rules?: string[] } = {}): Promise<void> {
    const named = this.rulesOf(options.rules);
    return this.limiter().reset(key, named === undefined ? {} : { rules: named });
  }

  private limiter(): Limiter {
    const compiled = loadCompiledPolicy(this.env.RATE_LIMIT_POLICY);
    if (compiled instanceof PolicyError) throw new Error(`RateLimitService: RATE_LIMIT_POLICY is invalid: ${compiled.message}`);
    const keys = keyHasherOf(this.env as Record<string, unknown>);
    if ("detail" in keys) throw new Error(`RateLimitService: ${keys.detail}`);
    const secret = this.env[KEY_SECRET_VARIABLE];
    const { prefix } = this.ctx.props ?? {};
    // An entrypoint instance per call: limiterFor makes the limiter once per policy, caller prefix and secret.
    return limiterFor(compiled, {
      namespace: this.env.RATE_LIMITER as never,
      // Counted as the exporting Worker's own requests are, when it binds somewhere to send the counts.
      ...(bindsMetricsSink(this.env as Record<string, unknown>) ? { metrics: this.env } : {}),
      ...(prefix !== undefined ? { prefix } : {}),
      ...(typeof secret === "string" && secret !== "" ? { keySecret: secret } : {}),
    });
  }

  /** The rules a call applies: those it names, each one the caller's props allow; by default all the props allow. */
  private rulesOf(asked: readonly string[] | undefined): string[] | undefined {
    const allowed = this.ctx.props?.rules;
    if (allowed === undefined) return asked === undefined ? undefined : [...asked];
    if (asked === undefined) return [...allowed];
    const refused = asked.filter((name) => !allowed.includes(name));
    if (refused.length > 0) {
      throw new TypeError(`limit(): rules: this binding may use only ${allowed.join(", ")} (not ${refused.join(", ")})`);
    }
    return [...asked];
  }
}
