import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

// The limiter Worker runs beside the caller, as `npm run dev` runs them: its bindings from limiter/wrangler.jsonc, its
// code as wrangler bundles it for deployment (`npm run build:limiter`, which `npm test` runs first, writes it to
// limiter/dist: wrangler takes --outdir from the config's folder). Its module rules were for the sources, not the bundle.
const { modulesRules: _bundled, ...limiter } = unstable_getMiniflareWorkerOptions("limiter/wrangler.jsonc").workerOptions;

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.jsonc" },
      miniflare: {
        workers: [
          {
            ...limiter,
            name: "edge-rate-limiter",
            modules: true,
            scriptPath: fileURLToPath(new URL("limiter/dist/index.js", import.meta.url)),
          },
        ],
      },
    }),
  ],
});
