import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // Unit and integration tests inside workerd, reading the real wrangler.toml.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // The demo origin that wrangler.toml binds as ORIGIN, as `npm start` runs it.
              workers: [
                {
                  name: "edge-rate-limiter-demo-origin",
                  modules: true,
                  scriptPath: "./demo-origin/index.js",
                  compatibilityDate: "2026-11-01",
                },
              ],
            },
          }),
        ],
        test: { name: "workers", include: ["test/**/*.test.ts"], exclude: ["test/e2e/**"], sequence: { groupOrder: 0 } },
      },
      {
        // End-to-end: real wrangler dev in front of a real Node HTTP origin, driven from Node. After the workers tests,
        // one file at a time: their timings (a 2 s origin timeout under a 100 MB upload, a crash mid-flood) must not
        // depend on what else the 2 cores are running.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1 },
          fileParallelism: false,
        },
      },
    ],
  },
});
