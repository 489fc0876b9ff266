/** The request body, for the dimensions the middleware reads from it, left for the app and the origin as it came. */

import type { HonoRequest } from "hono";
import { type BodyFields, readBodyFields, withBody } from "../identity/body-fields.ts";

/**
 * The fields of the body of `req`, read once by the middleware. The request is then made again from the bytes read
 * (`c.req.raw` replaced), so that the handler, and the proxy that streams it to the origin, get the body whole. A
 * clone would serve the handler too, but workerd cannot pipe a cloned body into another stream, as the proxy does.
 * A body an earlier middleware read already is taken from Hono's cache of it.
 */
export async function takeBodyFields(req: HonoRequest): Promise<BodyFields> {
  const { raw } = req;
  const unread = raw.bodyUsed ? withBody(raw, new Uint8Array(await req.arrayBuffer())) : raw;
  const read = await readBodyFields(unread);
  if (read.bytes !== undefined) req.raw = withBody(raw, read.bytes);
  return read;
}
