/** How objects are named: a client's by its client id, the global rules' one, each under a limiter's prefix. */

/** Name of the one object that holds every `scope: "global"` rule. Client ids always carry a `key:` or `ip:` prefix. */
export const GLOBAL_OBJECT = "global";

/**
 * The name of a client's object (or, given `GLOBAL_OBJECT`, the global one) under a limiter's prefix:
 * `<prefix>/<name>`, or the name alone without one. A `/` never appears in a client id.
 */
export function objectNameOf(prefix: string | undefined, name: string): string {
  return prefix === undefined ? name : `${prefix}/${name}`;
}
