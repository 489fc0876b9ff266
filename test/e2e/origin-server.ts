import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the origin saw of one request. */
export interface OriginLogEntry {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/** A real HTTP origin on 127.0.0.1 that logs every request it receives. */
export interface OriginServer {
  url: string;
  log: OriginLogEntry[];
  /** SHA-256 (hex) of every body it sent from /download, by request path. */
  sentDigests: Map<string, string>;
  close(): Promise<void>;
}

const CHUNK_BYTES = 64 * 1024;

/** Deterministic, incompressible bytes: chunk i is SHA-256(seed, i) repeated. */
export function* patternChunks(totalBytes: number, seed: string): Generator<Uint8Array> {
  let sent = 0;
  for (let i = 0; sent < totalBytes; i++) {
    const block = createHash("sha256").update(`${seed}:${i}`).digest();
    const size = Math.min(CHUNK_BYTES, totalBytes - sent);
    const chunk = new Uint8Array(size);
    for (let offset = 0; offset < size; offset += block.length) chunk.set(block.subarray(0, Math.min(block.length, size - offset)), offset);
    sent += size;
    yield chunk;
  }
}

/**
 * Routes: /download/<bytes> streams that many bytes; /upload digests the body it
 * receives; /status/<code> answers that status; /redirect answers 302; /stall never
 * answers; /drop/… closes the connection unanswered, /drop-once/… the first time only; anything else echoes the
 * request as JSON.
 */
export async function startOrigin(): Promise<OriginServer> {
  const log: OriginLogEntry[] = [];
  const sentDigests = new Map<string, string>();
  const server: Server = createServer((request, response) => {
    const path = request.url ?? "/";
    log.push({ method: request.method ?? "", path, headers: request.headers });

    const download = /^\/download\/(\d+)/.exec(path);
    if (download) {
      const digest = createHash("sha256");
      response.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": download[1] });
      const chunks = patternChunks(Number(download[1]), path);
      const pump = () => {
        for (let next = chunks.next(); !next.done; next = chunks.next()) {
          digest.update(next.value);
          if (!response.write(next.value)) return void response.once("drain", pump);
        }
        sentDigests.set(path, digest.digest("hex"));
        response.end();
      };
      pump();
      return;
    }
    if (path.startsWith("/upload")) {
      const digest = createHash("sha256");
      let bytes = 0;
      request.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        digest.update(chunk);
      });
      request.on("end", () => {
        response.writeHead(200, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ bytes, sha256: digest.digest("hex") }));
      });
      return;
    }
    const status = /^\/status\/(\d{3})/.exec(path);
    if (status) {
      response.writeHead(Number(status[1]), { "Content-Type": "text/plain", "X-Origin-Header": "kept" });
      response.end(`origin says ${status[1]}`);
      return;
    }
    if (path.startsWith("/redirect")) {
      response.writeHead(302, { Location: "/elsewhere" });
      response.end();
      return;
    }
    if (path.startsWith("/stall")) return; // never answers
    // The connection closed before any response byte, as a kept-alive connection the origin closes just as a request
    // reuses it: every time for /drop, the first time a path is seen for /drop-once.
    const seenBefore = log.filter((entry) => entry.path === path).length > 1;
    if (path.startsWith("/drop/") || (path.startsWith("/drop-once/") && !seenBefore)) {
      request.socket.destroy();
      return;
    }
    response.writeHead(200, { "Content-Type": "application/json", "X-Origin-Header": "kept" });
    response.end(JSON.stringify({ method: request.method, path, headers: request.headers }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    sentDigests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
