import type { MiddlewareHandler } from "hono";
import { type Policy, PolicyError, parsePolicy } from "./config.ts";
import type { Decision } from "./decision.ts";
import type { RateLimiter } from "./durable-object.ts";
import { problemResponse, QUOTA_EXCEEDED_TYPE } from "./errors.ts";
import { formatRateLimitHeaders, retryAfterSeconds } from "./headers.ts";
import { identifyClient } from "./identity.ts";

/** Options of the `rateLimit()` middleware. */
export interface RateLimitOptions {
  /**
   * The policy, as an object or a JSON string; validated once.
   * @default the `RATE_LIMIT_POLICY` binding of the Worker's environment
   */
  policy?: unknown;
  /**
   * Name of the Durable Object namespace binding of the `RateLimiter` class.
   * @default "RATE_LIMITER"
   */
  binding?: string;
}

/** Context variables the middleware sets for later handlers. */
export interface RateLimitVariables {
  /** The decision that admitted this request. */
  rateLimit: Decision;
}

/** Parses the environment's policy once per distinct value, so a bad policy is reported once per isolate. */
function policyFromEnvironment(): (raw: unknown) => Policy {
  let cachedRaw: unknown;
  let cached: Policy | PolicyError | undefined;
  return (raw) => {
    if (cached === undefined || raw !== cachedRaw) {
      cachedRaw = raw;
      try {
        cached = parsePolicy(raw);
      } catch (error) {
        if (!(error instanceof PolicyError)) throw error;
        cached = error;
        console.error(JSON.stringify({ event: "policy-invalid", problems: error.problems }));
      }
    }
    if (cached instanceof PolicyError) throw cached;
    return cached;
  };
}

function isNamespace(value: unknown): value is DurableObjectNamespace<RateLimiter> {
  return typeof value === "object" && value !== null && "getByName" in value;
}

function configurationProblem(detail: string): Response {
  return problemResponse({ status: 500, title: "Rate limiter misconfigured", detail });
}

/**
 * Rate-limits every request through the client's own Durable Object. Admitted
 * requests continue to the next handler; denied ones get 429 problem+json. Both
 * carry the RateLimit and RateLimit-Policy headers.
 */
export function rateLimit(options: RateLimitOptions = {}): MiddlewareHandler<{ Variables: RateLimitVariables }> {
  const bindingName = options.binding ?? "RATE_LIMITER";
  const fixedPolicy = options.policy === undefined ? undefined : parsePolicy(options.policy);
  const environmentPolicy = policyFromEnvironment();

  return async function rateLimitMiddleware(c, next) {
    const env = (c.env ?? {}) as Record<string, unknown>;
    let policy: Policy;
    try {
      policy = fixedPolicy ?? environmentPolicy(env.RATE_LIMIT_POLICY);
    } catch (error) {
      if (error instanceof PolicyError) return configurationProblem(error.message);
      throw error;
    }
    const namespace = env[bindingName];
    if (!isNamespace(namespace)) {
      console.error(JSON.stringify({ event: "binding-missing", binding: bindingName }));
      return configurationProblem(`the Durable Object binding ${bindingName} is not configured`);
    }

    const identity = await identifyClient(c.req.raw.headers);
    if ("problem" in identity) {
      return problemResponse({ status: 400, title: "No usable client identity", detail: identity.problem });
    }

    let decision: Decision;
    try {
      decision = await namespace
        .getByName(identity.clientId)
        .check({ rules: policy.rules, idleRetentionSeconds: policy.idleRetentionSeconds });
    } catch (error) {
      console.error(JSON.stringify({ event: "limiter-unavailable", clientId: identity.clientId, error: String(error) }));
      return problemResponse(
        { status: 503, title: "Rate limiter unavailable", detail: "The rate limiter could not decide this request; retry shortly." },
        { "Retry-After": "1" },
      );
    }

    const headers = formatRateLimitHeaders(decision);
    if (!decision.allowed) return quotaExceeded(decision, headers);

    c.set("rateLimit", decision);
    await next();
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}

function quotaExceeded(decision: Decision, headers: Record<string, string>): Response {
  const violated = decision.rules.filter((rule) => !rule.allowed);
  const impossible = violated.filter((rule) => rule.reason === "cost-exceeds-capacity");
  const detail =
    impossible.length > 0
      ? `This request costs more than rule ${impossible.map((rule) => `"${rule.name}"`).join(", ")} can ever allow at once.`
      : `Rate limit exceeded for ${violated.map((rule) => `"${rule.name}"`).join(", ")}; retry in ${retryAfterSeconds(decision)} s.`;
  return problemResponse(
    {
      type: QUOTA_EXCEEDED_TYPE,
      status: 429,
      title: "Request cannot be satisfied as assigned quota has been exceeded",
      detail,
      "violated-policies": violated.map((rule) => rule.name),
    },
    headers,
  );
}
