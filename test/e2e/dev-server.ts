import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = fileURLToPath(new URL("../../node_modules/wrangler/bin/wrangler.js", import.meta.url));

/** A free TCP port on 127.0.0.1, as the OS hands it out. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Sends a signal to every process of a group; one already gone is no error. */
function signalGroup(groupId: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-groupId, signal);
  } catch {
    // Already gone: nothing left to signal.
  }
}

/** How many live processes (zombies aside, which hold no port) belong to the process group, read from /proc. */
function groupMembers(groupId: number): number {
  let members = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // ended while being read
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so read from the last ')'.
    const [state, , group] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (state !== "Z" && Number(group) === groupId) members++;
  }
  return members;
}

/** A running `wrangler dev` of this repository's Worker. */
export interface DevServer {
  url: string;
  output: () => string;
  stop(): Promise<void>;
  /** Kills its whole process group at once with SIGKILL, as a crash would: nothing gets to shut down. */
  kill(): Promise<void>;
}

/** How to start the server: its `--var`s and storage, and whether through `npm start` (the README's command). */
export interface DevServerOptions {
  vars: Record<string, string>;
  persistTo: string;
  /** Run `npm start -- ...` (both Workers of the quick start) rather than wrangler on this Worker alone. @default false */
  npmStart?: boolean;
  /** Run these Workers together (`wrangler dev -c a -c b`, relative to the repository or absolute), the first on the port. */
  configs?: string[];
}

/** Starts `wrangler dev` on loopback with the given `--var`s and waits until it answers. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const flags = [
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    String(inspectorPort),
    "--persist-to",
    options.persistTo,
    "--show-interactive-dev-session=false",
    ...Object.entries(options.vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  const configs = (options.configs ?? []).flatMap((config) => ["-c", config]);
  const [command, args] = options.npmStart
    ? ["npm", ["start", "--", ...flags]]
    : [process.execPath, [WRANGLER, "dev", ...configs, ...flags]];
  const child: ChildProcess = spawn(command, args, {
    cwd: ROOT,
    detached: true, // its own process group, so stop() also ends workerd
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  // wrangler exits before the workerd processes it started: a server is stopped only once its whole group is gone,
  // or the next test's requests could still reach it.
  const groupGone = async () => {
    const deadline = Date.now() + 10_000;
    while (child.pid !== undefined && groupMembers(child.pid) > 0) {
      if (Date.now() > deadline) {
        signalGroup(child.pid, "SIGKILL");
        if (groupMembers(child.pid) > 0) throw new Error(`wrangler dev's processes outlived SIGKILL:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      signalGroup(child.pid, "SIGTERM");
      const killed = setTimeout(() => {
        if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      }, 5000);
      await exited;
      clearTimeout(killed);
    }
    await groupGone();
  };

  const kill = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      signalGroup(child.pid, "SIGKILL");
      await exited;
    }
    await groupGone();
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited early:\n${output}`);
    if (/Ready on/i.test(output)) {
      try {
        await fetch(`${url}/__ready`, { signal: AbortSignal.timeout(2000), headers: { "x-api-key": "readiness-probe" } });
        return { url, output: () => output, stop, kill };
      } catch {
        // Not accepting connections yet.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await stop();
  throw new Error(`wrangler dev did not become ready in 60 s:\n${output}`);
}

/**
 * A copy of an example's wrangler configuration (relative to the repository) whose `edge-rate-limiter` imports are this
 * repository's source, so that an end-to-end test runs the example as it is against the code under test rather than a
 * built package. Written into `dir`; its `main` still names the example's own file.
 */
export function withPackageFromSource(configPath: string, dir: string): string {
  const absolute = join(ROOT, configPath);
  const { config, error } = ts.parseConfigFileTextToJson(absolute, readFileSync(absolute, "utf8"));
  if (error) throw new Error(`${configPath}: ${ts.flattenDiagnosticMessageText(error.messageText, "\n")}`);
  const { $schema: _schema, ...rest } = config as { $schema?: string; main: string };
  const copy = join(dir, "wrangler.json");
  const fromSource = { ...rest, main: join(dirname(absolute), rest.main), alias: { "edge-rate-limiter": join(ROOT, "src/library.ts") } };
  writeFileSync(copy, JSON.stringify(fromSource, null, 2));
  return copy;
}
