// Adds lockfile entries for the other platforms' optional binaries (biome, workerd)
// that this machine's npm registry mirror does not serve (it answers 404 for them).
// `npm install` silently leaves them out, and `npm ci` then refuses the lockfile as
// out of sync. The entries carry only name, version and platform, which is all npm
// needs to skip them here; on their own platform npm fetches them as usual.
// Run after `npm install` changes package-lock.json: `node scripts/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from "node:fs";

const LOCKFILE = new URL("../package-lock.json", import.meta.url);
const PLATFORM = /-(android|darwin|linux|win32|windows)-(arm64|x64|64)(-musl)?$/;

const lock = JSON.parse(readFileSync(LOCKFILE, "utf8"));
const added = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `${path === "" ? "" : `${path}/`}node_modules/${name}`.replace(/^\//, "");
    const hoisted = `node_modules/${name}`;
    const match = PLATFORM.exec(name);
    if (!match || lock.packages[key] || lock.packages[hoisted]) continue;
    const [, os, cpu, musl] = match;
    lock.packages[hoisted] = {
      version,
      cpu: [cpu === "64" ? "x64" : cpu],
      dev: entry.dev,
      optional: true,
      os: [os === "windows" ? "win32" : os],
      ...(musl ? { libc: ["musl"] } : {}),
    };
    added.push(`${name}@${version}`);
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
writeFileSync(LOCKFILE, `${JSON.stringify(lock, null, 2)}\n`);
console.log(added.length ? `added ${added.join(", ")}` : "lockfile already complete");
