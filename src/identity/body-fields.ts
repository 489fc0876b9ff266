/** The fields of a request body that `from: "body"` dimensions read: an email from a login form. */

import { MAX_DIMENSION_BODY_BYTES } from "../policy/dimension-schema.ts";

/** A body's top-level fields, or why it could not be read. A body of another type has no fields. */
export type BodyFields = { fields: ReadonlyMap<string, unknown> } | { problem: string; status: 413 };

const NO_FIELDS: { fields: ReadonlyMap<string, unknown> } = { fields: new Map() };

/**
 * The value of a form field given more than once. Frameworks disagree on which one counts (Hono's `parseBody` keeps
 * the last), so the limiter takes neither: counting the first while the app reads the last would let a client name
 * someone else's email to the limiter and its own to the app.
 */
export const REPEATED_FIELD: unique symbol = Symbol("repeated form field");

/**
 * The top-level fields of `request`'s body, which this reads (at most `MAX_DIMENSION_BODY_BYTES` of it): the fields
 * of a URL-encoded or multipart form (a file is not a string, so it is no value), or else, whatever the
 * `Content-Type` says, a JSON object's members, since `request.json()` and `c.req.json()` read JSON under any type.
 * A body that parses as neither has no fields; a dimension read from it is missing (its `whenMissing` applies). The
 * bytes read come back too, for whoever sends the request on: `withBody` makes the request again from them.
 * @example
 * const read = await readBodyFields(request.clone()); // { fields: Map { "email" => "a@example.com", … }, bytes }
 */
export async function readBodyFields(request: Request): Promise<BodyFields & { bytes?: Uint8Array }> {
  if (request.body === null) return NO_FIELDS;
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase() ?? "";
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > MAX_DIMENSION_BODY_BYTES) return tooLarge();
  const bytes = await boundedBytesOf(request.body);
  if (bytes === undefined) return tooLarge();
  return { ...(await fieldsOf(type, bytes, request.headers)), bytes };
}

/** `request` with its body made again from the bytes `readBodyFields` read of it. */
export function withBody(request: Request, bytes: Uint8Array): Request {
  return new Request(request, { body: bytes });
}

async function fieldsOf(type: string, bytes: Uint8Array, headers: Headers): Promise<{ fields: ReadonlyMap<string, unknown> }> {
  try {
    if (type !== "application/x-www-form-urlencoded" && type !== "multipart/form-data") {
      const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
      const isObject = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
      return isObject ? { fields: new Map(Object.entries(parsed)) } : NO_FIELDS;
    }
    const form = await new Response(bytes, { headers: { "content-type": headers.get("content-type") as string } }).formData();
    const fields = new Map<string, unknown>();
    for (const [name, value] of form) fields.set(name, fields.has(name) ? REPEATED_FIELD : value);
    return { fields };
  } catch {
    // A body that does not parse as its type says has no fields: the app would find none in it either.
    return NO_FIELDS;
  }
}

/** The body's bytes, or undefined once there are more than the limiter reads. */
async function boundedBytesOf(body: ReadableStream<Uint8Array>): Promise<Uint8Array | undefined> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > MAX_DIMENSION_BODY_BYTES) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function tooLarge(): BodyFields {
  return {
    status: 413,
    problem: `the body is larger than the ${MAX_DIMENSION_BODY_BYTES} bytes the limiter reads for a dimension's field`,
  };
}
