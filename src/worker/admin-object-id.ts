/** How the admin API's `{id}` names an object: a client's (by IP or client id) or a dimension's value's. */

import { CLIENT_ID_FORM, DIMENSION_OBJECT_FORM, dimensionOfObjectId, ipClientId, isClientId } from "../identity/client-id.ts";
import type { Policy } from "../policy/types.ts";

/** How an `{id}` that carries a raw key is answered: the key would be in the URL, which request logs keep. */
export const RAW_KEY_IN_PATH_PROBLEM =
  '{id}: a raw key does not go in a URL, where request logs keep it: POST {"key": "<api key>"} to /clients/lookup, then use the "id:" path it answers';

/** The object an admin `{id}` names: a client's, or with `dimension` that of a dimension's value (an org's). */
export interface NamedObject {
  clientId: string;
  dimension?: string | undefined;
}

/**
 * The object an admin `{id}` names, as the limiter identifies it: `ip:<address>` (an IPv6 address stands for its
 * prefix), `id:<client id>` as logs, metrics, the dashboard and `/clients/lookup` show it, or `id:<dimension>:<hash>`
 * for a dimension's value (`id:org:3f0c…`). A key is never taken raw from a path (`RAW_KEY_IN_PATH_PROBLEM`).
 * Undefined, with a reason, when it is none of these.
 */
export function objectNamedBy(id: string, policy: Policy): NamedObject | { problem: string } {
  if (id.startsWith("id:")) {
    const clientId = id.slice(3);
    if (isClientId(clientId)) return { clientId };
    const dimension = dimensionOfObjectId(clientId, policy.dimensions);
    if (dimension !== undefined) return { clientId, dimension };
    return { problem: `{id}: "${clientId}" is not a client id (${CLIENT_ID_FORM}) nor a dimension's object (${DIMENSION_OBJECT_FORM})` };
  }
  if (id.startsWith("key:")) return { problem: RAW_KEY_IN_PATH_PROBLEM };
  if (id.startsWith("ip:")) {
    const address = id.slice(3).split("/")[0] ?? "";
    const clientId = ipClientId(address, policy.identity.ipv6PrefixLength);
    return clientId ? { clientId } : { problem: `{id}: "${address}" is not an IP address` };
  }
  return { problem: '{id}: must be "id:<client id>" or "ip:<address>" (a key\'s client: POST {"key": "<api key>"} to /clients/lookup)' };
}
