import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { problemResponse } from "../http/problem.ts";
import { credentialProblem, ipClientId, keyClientId } from "../identity/identify.ts";
import { algorithmsWithBurst } from "../limiter/registry.ts";
import { isolateDenialCache } from "../middleware/denials.ts";
import type { RateLimiter, RuleSet } from "../object/rate-limiter.ts";
import { formatPath, type Policy, type Rule, tierLimitsSchema } from "../policy/schema.ts";
import { VERSION } from "../version.ts";

/** Largest admin request body accepted. */
export const MAX_ADMIN_BODY_BYTES = 16 * 1024;

/** What the admin API needs from the Worker. */
export interface AdminOptions {
  /** The validated policy in force. */
  policy: Policy;
  namespace: DurableObjectNamespace<RateLimiter>;
  /** The `ADMIN_TOKEN` secret. */
  token: string;
  /** Where the API is mounted, such as "/_ratelimit". */
  prefix: string;
}

/** Constant-time comparison: both sides are hashed first, so neither length nor content leaks through timing. */
export async function isSameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([given, expected].map((text) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
  return crypto.subtle.timingSafeEqual(a as ArrayBuffer, b as ArrayBuffer);
}

function badRequest(detail: string, errors: string[] = [detail]): Response {
  return problemResponse({ status: 400, title: "Bad admin request", detail, errors });
}

/**
 * The client an admin `{id}` names, as the limiter identifies it: `key:<api key>`
 * (hashed here, exactly as for requests) or `ip:<address>` (an IPv6 address stands
 * for its prefix). Undefined, with a reason, when it is neither.
 */
async function clientIdOf(id: string, policy: Policy): Promise<{ clientId: string } | { problem: string }> {
  if (id.startsWith("key:")) {
    const key = id.slice(4);
    const problem = credentialProblem("the key", key);
    return problem ? { problem: `{id}: ${problem}` } : { clientId: await keyClientId(key) };
  }
  if (id.startsWith("ip:")) {
    const address = id.slice(3).split("/")[0] ?? "";
    const clientId = ipClientId(address, policy.identity);
    return clientId ? { clientId } : { problem: `{id}: "${address}" is not an IP address` };
  }
  return { problem: '{id}: must be "key:<api key>" or "ip:<address>"' };
}

/** The client-scoped rules and tiers an object needs to describe or apply them. */
function ruleSetOf(policy: Policy, clientId: string): RuleSet {
  const rules: Rule[] = policy.rules.filter((rule) => rule.scope === "client");
  return { rules, tier: policy.clients[clientId], tiers: policy.tiers };
}

/** The override body: a tier and/or per-rule limits, and an optional expiry. */
function overrideSchema(policy: Policy) {
  const clientRules = new Map(policy.rules.filter((rule) => rule.scope === "client").map((rule) => [rule.name, rule]));
  return z
    .strictObject({
      tier: z
        .string({ error: "must be a tier name" })
        .refine((tier) => tier in policy.tiers, {
          error: `must be one of the policy's tiers: ${Object.keys(policy.tiers).join(", ") || "(none defined)"}`,
        })
        .optional(),
      rules: z.record(z.string(), tierLimitsSchema).optional(),
      expiresAt: z
        .union([z.number(), z.iso.datetime({ offset: true })], { error: "must be an ISO 8601 date-time or epoch milliseconds" })
        .transform((value) => (typeof value === "number" ? value : Date.parse(value)))
        .optional(),
    })
    .superRefine((body, ctx) => {
      if (body.tier === undefined && body.rules === undefined) ctx.addIssue({ code: "custom", message: "must set a tier, rules, or both" });
      for (const [name, limits] of Object.entries(body.rules ?? {})) {
        const rule = clientRules.get(name);
        if (!rule) ctx.addIssue({ code: "custom", path: ["rules", name], message: `no client rule named "${name}"` });
        else if (limits.burst !== undefined && !algorithmsWithBurst.has(rule.algorithm)) {
          ctx.addIssue({ code: "custom", path: ["rules", name, "burst"], message: `${rule.algorithm} has no burst` });
        }
      }
      if (body.expiresAt !== undefined && body.expiresAt <= Date.now())
        ctx.addIssue({ code: "custom", path: ["expiresAt"], message: "must be in the future" });
    });
}

/**
 * The admin API, mounted under a prefix: health without authentication; inspect,
 * reset and override one client behind `Authorization: Bearer <ADMIN_TOKEN>`.
 */
export function createAdminApp(options: AdminOptions) {
  const { policy, namespace } = options;
  const admin = new Hono<{ Variables: { clientId: string } }>().basePath(options.prefix);
  const override = overrideSchema(policy);

  admin.get("/health", (c) => c.json({ status: "ok", version: VERSION }));

  admin.use("/clients/*", async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !(await isSameSecret(match[1] ?? "", options.token))) {
      return problemResponse(
        { status: 401, title: "Unauthorized", detail: "Send Authorization: Bearer <ADMIN_TOKEN>." },
        { "WWW-Authenticate": 'Bearer realm="rate-limiter admin"' },
      );
    }
    await next();
  });

  const resolveClient = createMiddleware<{ Variables: { clientId: string } }>(async (c, next) => {
    const identity = await clientIdOf(c.req.param("id") ?? "", policy);
    if ("problem" in identity) return badRequest(identity.problem);
    c.set("clientId", identity.clientId);
    await next();
  });
  admin.use("/clients/:id", resolveClient);
  admin.use("/clients/:id/*", resolveClient);
  admin.use(
    "/clients/:id/override",
    bodyLimit({ maxSize: MAX_ADMIN_BODY_BYTES, onError: () => badRequest(`body: must be at most ${MAX_ADMIN_BODY_BYTES} bytes`) }),
  );

  admin.get("/clients/:id", async (c) => {
    const clientId = c.get("clientId");
    const state = await namespace.getByName(clientId).inspect(ruleSetOf(policy, clientId));
    return c.json({ client: clientId, ...state });
  });

  admin.post("/clients/:id/reset", async (c) => {
    const clientId = c.get("clientId");
    await namespace.getByName(clientId).reset();
    changed("admin-reset", clientId);
    return c.json({ client: clientId, reset: true });
  });

  admin.put("/clients/:id/override", async (c) => {
    const clientId = c.get("clientId");
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      return badRequest("body: must be a JSON object");
    }
    const parsed = override.safeParse(body);
    if (!parsed.success) {
      const errors = parsed.error.issues.map((issue) => `${formatPath(issue.path, "(body)")}: ${issue.message}`);
      return badRequest(errors[0] ?? "invalid override", errors);
    }
    const stub = namespace.getByName(clientId);
    await stub.setOverride(parsed.data);
    changed("admin-override", clientId);
    return c.json({ client: clientId, ...(await stub.inspect(ruleSetOf(policy, clientId))) });
  });

  admin.delete("/clients/:id/override", async (c) => {
    const clientId = c.get("clientId");
    await namespace.getByName(clientId).clearOverride();
    changed("admin-override-removed", clientId);
    return c.json({ client: clientId, override: null });
  });

  admin.notFound(() => problemResponse({ status: 404, title: "Not Found", detail: "No such admin endpoint." }));
  return admin;
}

/** After an admin change to a client: its denials cached in this isolate no longer hold, and the change is logged. */
function changed(event: string, clientId: string): void {
  isolateDenialCache.forgetClient(clientId);
  console.log(JSON.stringify({ event, clientId }));
}
