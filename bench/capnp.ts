// Writes a workerd configuration as Cap'n Proto text from plain objects.
import { relative } from "node:path";

/** Marks a string to be written as `embed "path"` (the file's contents) rather than a literal. */
export class Embed {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
}

function quote(text: string): string {
  // Cap'n Proto text strings take C-style escapes: \\xNN, not JSON's \\uNNNN.
  return JSON.stringify(text).replace(/\\u00([0-9a-f]{2})/gi, "\\x$1");
}

/** One value in Cap'n Proto text: structs as `(field = value, ...)`, lists as `[...]`. Embeds are relative to `baseDir`. */
export function toCapnp(value: unknown, baseDir: string, indent = ""): string {
  const inner = `${indent}  `;
  // Cap'n Proto reads an absolute embed path against its import path, not the file system root.
  if (value instanceof Embed) return `embed ${quote(relative(baseDir, value.path))}`;
  if (typeof value === "string") return quote(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((item) => `${inner}${toCapnp(item, baseDir, inner)}`).join(",\n")}\n${indent}]`;
  }
  if (typeof value === "object" && value !== null) {
    const fields = Object.entries(value).filter(([, field]) => field !== undefined);
    if (fields.length === 0) return "()";
    return `(\n${fields.map(([name, field]) => `${inner}${name} = ${toCapnp(field, baseDir, inner)}`).join(",\n")}\n${indent})`;
  }
  throw new Error(`cannot write ${String(value)} as Cap'n Proto`);
}

/** A whole workerd config file, to be written into `baseDir`. */
export function workerdConfig(config: object, baseDir: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";\n\nconst config :Workerd.Config = ${toCapnp(config, baseDir)};\n`;
}
