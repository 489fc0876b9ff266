/** How a request identifies its client: the policy's `identity` field. */

/** Where the client's identity comes from. */
export interface IdentityOptions {
  /** Headers that carry an API key, in order of preference. @default ["x-api-key"] */
  keyHeaders: string[];
  /** Whether an `Authorization: Bearer` token identifies the client. @default true */
  bearer: boolean;
  /** Whether a request without credentials is identified by `CF-Connecting-IP`. @default true */
  ipFallback: boolean;
  /** IPv6 clients are identified by this prefix of their address. @default 64 */
  ipv6PrefixLength: number;
  /** A credential that is present but unusable: answer 400 ("reject"), or use the IP instead ("ip"). @default "reject" */
  onInvalid: "reject" | "ip";
}

/** The identity sources used when the policy sets none. */
export const DEFAULT_IDENTITY: IdentityOptions = {
  keyHeaders: ["x-api-key"],
  bearer: true,
  ipFallback: true,
  ipv6PrefixLength: 64,
  onInvalid: "reject",
};
