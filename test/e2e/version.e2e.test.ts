import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { VERSION } from "../../src/version.ts";

it("reports the version package.json declares", () => {
  const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  expect(VERSION).toBe(packageJson.version);
});
