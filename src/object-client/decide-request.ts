import type { Decision, DecisionRequest, ObjectDecision, RuleVerdict } from "../object/protocol.ts";
import type { RuleSet } from "../policy/compiled-policy.ts";
import type { Policy, Rule } from "../policy/types.ts";
import { CallBatcher } from "./call-batcher.ts";
import { callObject, type RateLimiterNamespace } from "./call-object.ts";

/** Name of the one object that holds every `scope: "global"` rule. Client ids always carry a `key:` or `ip:` prefix. */
export const GLOBAL_OBJECT = "global";

/** Everything needed to decide one request. */
export interface DecideOptions {
  namespace: RateLimiterNamespace;
  clientId: string;
  /** The rules that apply to this request. */
  ruleSet: RuleSet;
  policy: Pick<Policy, "objectTimeoutMs" | "clients">;
  /** The request's `waitUntil`, to let a call that carries other requests' decisions finish if this client goes away. */
  waitUntil?: ((promise: Promise<unknown>) => void) | undefined;
}

/**
 * Decides a request. Client rules are decided first, together, in the client's
 * object. Only if they admit it are the global rules decided, in the global
 * object; if those deny it, the client's charge is refunded exactly (see
 * RefundJournal), so a request is charged to every rule or to none
 * (docs/architecture.md, invariant 2).
 */
export async function decideRequest(options: DecideOptions): Promise<Decision> {
  const { ruleSet } = options;
  const client: ObjectDecision = ruleSet.clientRequest
    ? await askObject(options, options.clientId, ruleSet.clientRules, clientRequestOf(options, ruleSet.clientRequest))
    : { allowed: true, rules: [] };
  if (!client.allowed || !ruleSet.globalRequest) return withoutChargeId(client);

  const global = await askObject(options, GLOBAL_OBJECT, ruleSet.globalRules, ruleSet.globalRequest);
  const decision: Decision = {
    allowed: global.allowed,
    rules: [...client.rules, ...global.rules],
    ...(client.degraded || global.degraded ? { degraded: true } : {}),
  };
  if (!global.allowed && client.chargeId !== undefined) await refundClient(options, client.chargeId);
  return decision;
}

/** What the client's object is asked: the rule set's request, with the client's tier when it has one. */
function clientRequestOf(options: DecideOptions, request: DecisionRequest): DecisionRequest {
  const tier = options.policy.clients[options.clientId];
  return tier === undefined ? request : { ...request, tier };
}

/** Per namespace: concurrent requests to one object from this isolate go to it as one call. */
const batchers = new WeakMap<RateLimiterNamespace, CallBatcher<DecisionRequest, ObjectDecision>>();

function batcherFor(namespace: RateLimiterNamespace): CallBatcher<DecisionRequest, ObjectDecision> {
  let batcher = batchers.get(namespace);
  if (!batcher) {
    batcher = new CallBatcher();
    batchers.set(namespace, batcher);
  }
  return batcher;
}

/** Asks one object, batched with this isolate's other requests to it; on failure, logs it and lets each rule's onError decide. */
async function askObject(options: DecideOptions, name: string, rules: readonly Rule[], request: DecisionRequest): Promise<ObjectDecision> {
  const { namespace, policy } = options;
  // A call in flight takes at most two attempts of objectTimeoutMs; past twice that it has stalled.
  const waitLimitMs = 4 * policy.objectTimeoutMs;
  const send = (batch: DecisionRequest[]) => {
    const call = callObject(namespace, name, policy.objectTimeoutMs, (stub) => stub.decide(batch));
    // Other requests wait on this call's answer: it must finish even if this request's client goes away.
    if (batch.length > 1) options.waitUntil?.(call.catch(() => undefined));
    return call;
  };
  try {
    return await batcherFor(namespace).call(name, request, send, waitLimitMs);
  } catch (error) {
    const verdicts = degradedVerdicts(rules);
    console.error(
      JSON.stringify({
        event: "limiter-degraded",
        object: name === GLOBAL_OBJECT ? "global" : "client",
        clientId: options.clientId,
        rules: rules.map((r) => r.name),
        allowed: isAdmitted(verdicts),
        error: String(error),
      }),
    );
    return { allowed: isAdmitted(verdicts), rules: verdicts, degraded: true };
  }
}

/** What each rule's `onError` decides when its object could not answer. */
function degradedVerdicts(rules: readonly Rule[]): RuleVerdict[] {
  return rules.map((rule) => ({
    name: rule.name,
    mode: rule.mode,
    periodSeconds: rule.periodSeconds,
    limit: rule.limit,
    allowed: rule.onError === "allow",
    remaining: 0,
    resetSeconds: 0,
    retryAfterSeconds: rule.onError === "allow" ? 0 : 1,
    retryAfterMs: 0,
    degraded: true,
  }));
}

function isAdmitted(verdicts: RuleVerdict[]): boolean {
  return verdicts.every((verdict) => verdict.mode === "shadow" || verdict.allowed);
}

async function refundClient(options: DecideOptions, chargeId: string): Promise<void> {
  try {
    const refunded = await callObject(options.namespace, options.clientId, options.policy.objectTimeoutMs, (stub) => stub.refund(chargeId));
    if (!refunded) console.error(JSON.stringify({ event: "refund-refused", clientId: options.clientId }));
  } catch (error) {
    // The charge stays: the client loses that much budget, which can only under-admit.
    console.error(JSON.stringify({ event: "refund-failed", clientId: options.clientId, error: String(error) }));
  }
}

/** The decision without the object's charge id, which is the Worker's business only; as it is when there is none. */
function withoutChargeId(result: ObjectDecision): Decision {
  if (result.chargeId === undefined) return result;
  const { chargeId: _, ...decision } = result;
  return decision;
}
