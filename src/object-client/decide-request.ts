import type { Decision, RuleVerdict } from "../object/protocol.ts";
import type { CheckOptions, CheckResult, RateLimiter } from "../object/rate-limiter.ts";
import type { Policy, Rule } from "../policy/schema.ts";
import { CallBatcher } from "./call-batcher.ts";

/** Name of the one object that holds every `scope: "global"` rule. Client ids always carry a `key:` or `ip:` prefix. */
export const GLOBAL_OBJECT = "global";

/** Everything needed to decide one request. */
export interface DecideOptions {
  namespace: DurableObjectNamespace<RateLimiter>;
  clientId: string;
  /** The rules that apply to this request. */
  rules: readonly Rule[];
  policy: Pick<Policy, "idleRetentionSeconds" | "objectTimeoutMs" | "groupCommitMs" | "reservations" | "tiers" | "clients">;
  /** The request's `waitUntil`, to let a call that carries other requests' checks finish if this client goes away. */
  waitUntil?: ((promise: Promise<unknown>) => void) | undefined;
}

class ObjectTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`the Durable Object did not answer within ${timeoutMs} ms`);
  }
}

/** Whether workerd marked an error as transient and the object as not overloaded: worth one retry. */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const flags = error as { retryable?: unknown; overloaded?: unknown };
  return flags.retryable === true && flags.overloaded !== true;
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ObjectTimeout(timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls an object with a timeout, retrying once on a fresh stub when the error says that may help. */
async function callObject<T>(options: DecideOptions, name: string, call: (stub: DurableObjectStub<RateLimiter>) => Promise<T>): Promise<T> {
  const attempt = () => withTimeout(call(options.namespace.getByName(name)), options.policy.objectTimeoutMs);
  try {
    return await attempt();
  } catch (error) {
    if (!isRetryable(error)) throw error;
    return await attempt();
  }
}

const objectRules = new WeakMap<Rule, Rule>();

/**
 * A rule as the object receives it: without its `match`, the one nested field and
 * one only the Worker uses, since every argument is serialized for the call. Made once per rule.
 */
function forObject(rule: Rule): Rule {
  let slim = objectRules.get(rule);
  if (!slim) {
    const { match: _match, ...rest } = rule;
    slim = rest;
    objectRules.set(rule, slim);
  }
  return slim;
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

/** Per namespace: concurrent checks of one object from this isolate go to it as one call. */
const batchers = new WeakMap<DurableObjectNamespace<RateLimiter>, CallBatcher<CheckOptions, CheckResult>>();

function batcherFor(namespace: DurableObjectNamespace<RateLimiter>): CallBatcher<CheckOptions, CheckResult> {
  let batcher = batchers.get(namespace);
  if (!batcher) {
    batcher = new CallBatcher();
    batchers.set(namespace, batcher);
  }
  return batcher;
}

/** Sends a batch of checks to one object as one call. */
function sendChecks(options: DecideOptions, name: string, batch: CheckOptions[]): Promise<CheckResult[]> {
  const call = callObject(options, name, (stub) => stub.checkMany(batch));
  // Other requests wait on this call's answer: it must finish even if this request's client goes away.
  if (batch.length > 1) options.waitUntil?.(call.catch(() => undefined));
  return call;
}

/** A rule list split by scope (the client's own buckets, the one all clients share), once per list. */
interface ScopedRules {
  client: readonly Rule[];
  global: readonly Rule[];
}

const scopedLists = new WeakMap<readonly Rule[], ScopedRules>();

function byScope(rules: readonly Rule[]): ScopedRules {
  let scoped = scopedLists.get(rules);
  if (!scoped) {
    scoped = { client: rules.filter((rule) => rule.scope === "client"), global: rules.filter((rule) => rule.scope === "global") };
    scopedLists.set(rules, scoped);
  }
  return scoped;
}

/** The checks sent for a rule list on behalf of clients without a tier: every such request sends the same. */
const untieredChecks = new WeakMap<readonly Rule[], { policy: DecideOptions["policy"]; provisional: boolean; check: CheckOptions }>();

/** What the object is asked to decide for these rules. */
function checkFor(options: DecideOptions, name: string, rules: readonly Rule[], provisional: boolean): CheckOptions {
  // Tiers and overrides apply to a client's own rules, never to the budget all clients share.
  const tier = name === GLOBAL_OBJECT ? undefined : options.policy.clients[options.clientId];
  const made = tier === undefined ? untieredChecks.get(rules) : undefined;
  if (made && made.policy === options.policy && made.provisional === provisional) return made.check;
  const hasTiers = name !== GLOBAL_OBJECT && Object.keys(options.policy.tiers).length > 0;
  const check: CheckOptions = {
    rules: rules.map(forObject),
    ...(tier === undefined ? {} : { tier }),
    ...(hasTiers ? { tiers: options.policy.tiers } : {}),
    idleRetentionSeconds: options.policy.idleRetentionSeconds,
    groupCommitMs: options.policy.groupCommitMs,
    ...(options.policy.reservations ? {} : { reservations: false }),
    ...(provisional ? { provisional } : {}),
  };
  if (tier === undefined) untieredChecks.set(rules, { policy: options.policy, provisional, check });
  return check;
}

/** Asks one object; on failure, logs it and lets each rule's onError decide. */
async function checkObject(options: DecideOptions, name: string, rules: readonly Rule[], provisional: boolean): Promise<CheckResult> {
  const check = checkFor(options, name, rules, provisional);
  // A call in flight takes at most two attempts of objectTimeoutMs; past twice that it has stalled.
  const waitLimitMs = 4 * options.policy.objectTimeoutMs;
  try {
    return await batcherFor(options.namespace).call(name, check, (batch) => sendChecks(options, name, batch), waitLimitMs);
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

/**
 * Decides a request. Client rules are decided first, together, in the client's
 * object. Only if they admit it are the global rules decided, in the global
 * object; if those deny it, the client's charge is refunded exactly (see
 * RefundJournal), so a request is charged to every rule or to none.
 */
export async function decideRequest(options: DecideOptions): Promise<Decision> {
  const { client: clientRules, global: globalRules } = byScope(options.rules);

  const client: CheckResult =
    clientRules.length > 0
      ? await checkObject(options, options.clientId, clientRules, globalRules.length > 0)
      : { allowed: true, rules: [] };
  if (!client.allowed || globalRules.length === 0) return withoutChargeId(client);

  const global = await checkObject(options, GLOBAL_OBJECT, globalRules, false);
  const decision: Decision = {
    allowed: global.allowed,
    rules: [...client.rules, ...global.rules],
    ...(client.degraded || global.degraded ? { degraded: true } : {}),
  };
  if (!global.allowed && client.chargeId !== undefined) await refundClient(options, client.chargeId);
  return decision;
}

async function refundClient(options: DecideOptions, chargeId: string): Promise<void> {
  try {
    const refunded = await callObject(options, options.clientId, (stub) => stub.refund(chargeId));
    if (!refunded) console.error(JSON.stringify({ event: "refund-refused", clientId: options.clientId }));
  } catch (error) {
    // The charge stays: the client loses that much budget, which can only under-admit.
    console.error(JSON.stringify({ event: "refund-failed", clientId: options.clientId, error: String(error) }));
  }
}

/** The decision without the object's charge id, which is the Worker's business only; as it is when there is none. */
function withoutChargeId(result: CheckResult): Decision {
  if (result.chargeId === undefined) return result;
  const { chargeId: _, ...decision } = result;
  return decision;
}
