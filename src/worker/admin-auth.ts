/** The admin API's authentication: the Bearer token, compared in constant time, behind budgets of failed attempts. */

import { createMiddleware } from "hono/factory";
import { problemResponse } from "../http/problem.ts";
import { ipClientId } from "../identity/client-id.ts";
import { bearerTokenOf } from "../identity/identify.ts";
import type { DecisionRequest, ObjectRule } from "../object/protocol.ts";
import type { RateLimiterNamespace } from "../object-client/call-object.ts";
import type { Policy } from "../policy/types.ts";
import type { AdminAccess } from "./env.ts";

/**
 * Failed admin authentications allowed per client address: 10 a minute, then 429 until the bucket has one again,
 * whatever the token, so that a token cannot be guessed faster than that. Kept in the `RateLimiter` object named
 * `admin-auth:<address>` (by its /64 for IPv6), exactly as a client's rule, shared by every isolate.
 */
export const AUTH_FAILURES_RULE: ObjectRule = {
  name: "admin-auth-failures",
  algorithm: "token-bucket",
  limit: 10,
  periodSeconds: 60,
  burst: 10,
  cost: 1,
  mode: "enforce",
  onError: "allow",
  scope: "client",
};

/**
 * Failed admin authentications allowed from every address together: 100, then one every 36 s (100 an hour). Many
 * addresses (the /64s of one /48 are 65,536 of them) would otherwise each get their own 10 a minute. Under such an
 * attack the operator is locked out too, until the guesses stop: a guessed token would be worse. Kept in the object
 * `admin-auth:all`.
 */
export const ALL_AUTH_FAILURES_RULE: ObjectRule = {
  ...AUTH_FAILURES_RULE,
  name: "admin-auth-failures-all",
  limit: 100,
  periodSeconds: 3600,
  burst: 100,
};

/**
 * The middleware every admin route but health and the dashboard page goes through: an address locked out (its own
 * budget of failures spent, or every address's) is answered 429 whatever the token; a wrong or missing token is
 * charged to both budgets and answered 401.
 */
export function adminAuthentication(namespace: RateLimiterNamespace, access: AdminAccess, policy: Policy) {
  return createMiddleware(async (c, next) => {
    // The address's own budget of failures, and the one of every address together.
    const budgets = [
      { object: namespace.getByName(authFailuresObjectOf(c.req.raw.headers, policy)), rule: AUTH_FAILURES_RULE },
      { object: namespace.getByName("admin-auth:all"), rule: ALL_AUTH_FAILURES_RULE },
    ].map(({ object, rule }) => ({
      object,
      rule,
      request: { rules: [rule], idleRetentionSeconds: 0, reservations: false } as DecisionRequest,
    }));
    // Locked out first, whatever the token: otherwise guesses would go on, told apart by their 401 and 200.
    const states = await Promise.all(budgets.map(({ object, request }) => object.inspect(request)));
    const spent = budgets.find((_, index) => (states[index]?.rules[0]?.remaining ?? 1) < 1);
    if (spent) return tooManyFailures(spent.rule);
    const token = bearerTokenOf(c.req.raw.headers);
    if (token === undefined || !(await access.isAdminToken(token))) {
      const charged = await Promise.all(budgets.map(({ object, request }) => object.decide([request])));
      const denied = budgets.find((_, index) => charged[index]?.[0]?.allowed === false);
      if (denied) return tooManyFailures(denied.rule);
      return problemResponse(
        { status: 401, title: "Unauthorized", detail: "Send Authorization: Bearer <ADMIN_TOKEN>." },
        { "WWW-Authenticate": 'Bearer realm="rate-limiter admin"' },
      );
    }
    await next();
  });
}

/**
 * The object that counts a client address's failed admin authentications. `CF-Connecting-IP` is set by Cloudflare;
 * without it (a local request) every caller shares one count.
 */
function authFailuresObjectOf(headers: Headers, policy: Policy): string {
  const address = headers.get("cf-connecting-ip");
  const clientId = address ? ipClientId(address, policy.identity.ipv6PrefixLength) : undefined;
  return `admin-auth:${clientId ?? "unknown"}`;
}

/** The answer to failed authentications beyond a budget: its bucket refills one every period / limit. */
function tooManyFailures(rule: ObjectRule): Response {
  const retryAfterSeconds = Math.ceil(rule.periodSeconds / rule.limit);
  const fromAll = rule === ALL_AUTH_FAILURES_RULE;
  console.error(JSON.stringify({ event: "admin-auth-locked", budget: fromAll ? "all-addresses" : "address" }));
  const detail = fromAll
    ? `More than ${rule.limit} failed authentications an hour from all addresses together: try again in ${retryAfterSeconds} s.`
    : `More than ${rule.limit} failed authentications a minute from this address: try again in ${retryAfterSeconds} s.`;
  return problemResponse({ status: 429, title: "Too many failed authentications", detail }, { "Retry-After": String(retryAfterSeconds) });
}
