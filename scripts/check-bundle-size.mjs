// Fails when a Worker's bundle, minified as `wrangler deploy --minify` makes it, is over a budget: what a Worker
// bundles from the limiter is parsed at every cold start in every isolate (docs/api.md, Bundle size).
// Usage: node scripts/check-bundle-size.mjs <wrangler --outdir> <max KiB>
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const [outdir, maxKiB] = process.argv.slice(2);
if (!outdir || !maxKiB || !Number.isFinite(Number(maxKiB))) {
  console.error("usage: node scripts/check-bundle-size.mjs <wrangler --outdir> <max KiB>");
  process.exit(2);
}
const bundles = readdirSync(outdir).filter((name) => name.endsWith(".js"));
if (bundles.length === 0) {
  console.error(`no .js bundle in ${outdir}: run wrangler deploy --dry-run --minify --outdir ${outdir} first`);
  process.exit(2);
}
const kib = bundles.reduce((total, name) => total + statSync(join(outdir, name)).size, 0) / 1024;
const verdict = kib <= Number(maxKiB) ? "within" : "OVER";
console.log(`bundle ${bundles.join(" + ")}: ${kib.toFixed(1)} KiB minified, ${verdict} the budget of ${maxKiB} KiB`);
if (verdict === "OVER") process.exit(1);
