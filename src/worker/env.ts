import { hashSecret, isSameDigest, type KeyHasher, secretWeakness } from "../identity/secret.ts";

const DEFAULT_ORIGIN_TIMEOUT_SECONDS = 30;
const DEFAULT_ADMIN_PREFIX = "/_ratelimit";

/** A variable that is set wrongly: the field, what is wrong (for the log) and what to fix (for the 500). */
export interface VariableProblem {
  field: string;
  problem: string;
  detail: string;
}

/** Where admitted requests go: an absolute base URL, or the ORIGIN service binding. */
export type Origin = { url: URL } | { binding: Fetcher };

/** The admin API's access, present only while ADMIN_TOKEN is set. */
export interface AdminAccess {
  /** Where the admin API is mounted, without a trailing slash, such as "/_ratelimit". */
  prefix: string;
  /** Set when ADMIN_TOKEN is too weak to enable the admin API: its paths are then answered 500, saying why. */
  refused?: VariableProblem;
  /** Whether a routed path is the admin API's. */
  isAdminPath(path: string): boolean;
  /** Whether `given` is the admin token, compared in constant time by SHA-256; what is given is not remembered. */
  isAdminToken(given: string): Promise<boolean>;
  /**
   * Whether `given`, a credential on an ordinary path, is the admin token: compared the same way, through the
   * client ids identity remembers (`keys`, the request's hasher), so that a client's Bearer key is not hashed again
   * on every request.
   */
  isAdminKey(given: string, keys: KeyHasher): Promise<boolean>;
}

/** The shipped Worker's variables, read and checked once per environment object. */
export interface WorkerEnv {
  /**
   * Undefined while ADMIN_TOKEN is unset: the admin paths are then ordinary paths, limited and proxied. A problem
   * when ADMIN_PREFIX is set wrongly: no path can be told to be the admin API's, so every request is answered 500.
   */
  admin: AdminAccess | VariableProblem | undefined;
  /**
   * While ADMIN_TOKEN is unset, the path the dashboard would have (`{ADMIN_PREFIX}/dashboard`), answered with a page
   * that says how to enable it rather than passed to the origin; undefined otherwise, or when ADMIN_PREFIX is wrong.
   */
  disabledDashboardPath: string | undefined;
  origin: Origin | VariableProblem;
  /** How long to wait for the origin's response headers. */
  originTimeoutMs: number | VariableProblem;
}

const read = new WeakMap<object, WorkerEnv>();

/** The Worker's variables, read once per `env` object rather than per request. */
export function workerEnvOf(env: Env): WorkerEnv {
  let workerEnv = read.get(env);
  if (!workerEnv) {
    const admin = adminAccessOf(env);
    workerEnv = {
      admin,
      disabledDashboardPath: admin === undefined ? disabledDashboardPathOf(env) : undefined,
      origin: originOf(env),
      originTimeoutMs: originTimeoutMsOf(env.ORIGIN_TIMEOUT_SECONDS),
    };
    read.set(env, workerEnv);
  }
  return workerEnv;
}

/** What ADMIN_PREFIX may be: a path of one or more segments of unreserved characters (RFC 3986 §2.3), such as "/_ratelimit". */
const ADMIN_PREFIX_PATTERN = /^(\/[A-Za-z0-9._~-]+)+\/?$/;

/**
 * ADMIN_PREFIX (or its default) without its trailing slashes, as the admin API is mounted; undefined when it cannot be
 * the admin API's prefix (`adminAccessOf` says what is wrong with it).
 */
function adminPrefixOf(env: Env): string | undefined {
  const configured = env.ADMIN_PREFIX || DEFAULT_ADMIN_PREFIX;
  // "/" would make every path the admin API's; a prefix without its leading "/" would match none.
  const valid = ADMIN_PREFIX_PATTERN.test(configured) && !configured.split("/").some((segment) => segment === "." || segment === "..");
  return valid ? configured.replace(/\/+$/, "") : undefined;
}

function disabledDashboardPathOf(env: Env): string | undefined {
  const prefix = adminPrefixOf(env);
  return prefix === undefined ? undefined : `${prefix}/dashboard`;
}

function adminAccessOf(env: Env): AdminAccess | VariableProblem | undefined {
  // A secret: not in wrangler.toml, so not in the generated Env.
  const token: unknown = (env as unknown as Record<string, unknown>).ADMIN_TOKEN;
  if (typeof token !== "string" || token === "") return undefined;
  const prefix = adminPrefixOf(env);
  if (prefix === undefined) {
    return {
      field: "ADMIN_PREFIX",
      problem: "not a path of one or more segments",
      detail: 'ADMIN_PREFIX: must be a path such as "/_ratelimit": a leading "/" and one or more segments of A-Z a-z 0-9 . _ ~ -',
    };
  }
  const weakness = secretWeakness(token);
  let tokenDigest: Promise<string> | undefined;
  let tokenClientId: { keys: KeyHasher; clientId: Promise<string> } | undefined;
  return {
    prefix,
    ...(weakness
      ? {
          refused: {
            field: "ADMIN_TOKEN",
            problem: weakness,
            detail: `ADMIN_TOKEN: ${weakness}; generate one with \`openssl rand -hex 32\``,
          },
        }
      : {}),
    isAdminPath: (path) => path === prefix || path.startsWith(`${prefix}/`),
    // Admin paths are not limited: remembering what they are sent would let anyone flush the clients' hashes.
    async isAdminToken(given) {
      tokenDigest ??= hashSecret(token);
      return isSameDigest(await hashSecret(given), await tokenDigest);
    },
    async isAdminKey(given, keys) {
      if (tokenClientId?.keys !== keys) tokenClientId = { keys, clientId: keys.clientId(token) };
      return isSameDigest(await keys.clientId(given), await tokenClientId.clientId);
    },
  };
}

/** ORIGIN_URL when set, else the ORIGIN service binding. */
function originOf(env: Env): Origin | VariableProblem {
  const originUrl = env.ORIGIN_URL;
  if (originUrl) {
    const url = URL.parse(originUrl);
    if (url && (url.protocol === "http:" || url.protocol === "https:")) return { url };
    return { field: "ORIGIN_URL", problem: "not an absolute http(s) URL", detail: "ORIGIN_URL: must be an absolute http(s) URL" };
  }
  if (env.ORIGIN) return { binding: env.ORIGIN };
  return {
    field: "ORIGIN_URL",
    problem: "no origin configured",
    detail: "ORIGIN_URL: not set, and no ORIGIN service binding: the limiter has nowhere to send admitted requests",
  };
}

/** ORIGIN_TIMEOUT_SECONDS as ms (a `--var` makes it a string). */
function originTimeoutMsOf(raw: unknown): number | VariableProblem {
  if (raw === undefined || raw === "") return DEFAULT_ORIGIN_TIMEOUT_SECONDS * 1000;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds > 0) return seconds * 1000;
  return { field: "ORIGIN_TIMEOUT_SECONDS", problem: "not a number > 0", detail: "ORIGIN_TIMEOUT_SECONDS: must be a number > 0" };
}
