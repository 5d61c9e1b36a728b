/**
 * What an idle TLS connection costs a bare Node process, with no XMPP at all: the floor under
 * Switchboard's memory per idle TLS session (docs/benchmarks.md, "Memory per TLS session").
 *
 * A server child (this file with `--serve`) accepts connections over direct TLS, or over TCP
 * upgraded in place as STARTTLS does; each connection may first exchange `--rounds` writes
 * each way (about an XMPP login's), the server's of `--answer-bytes`. The largest write matters:
 * Node's TLS output ring starts with 1 KiB and keeps any 16 KiB buffer it adds for a burst of
 * more ciphertext than that for the connection's life (src/crypto/crypto_bio.cc).
 *
 * The server runs as the launcher runs Switchboard: its Node flags, no session tickets
 * (Switchboard's `tls.sessionTickets: false`), the same EC P-256 certificate as `npm run
 * bench`, and jemalloc with decay 0 when it is installed (where the launcher looks for it),
 * then again on the system's malloc. The report gives the growth of the server's RSS and of
 * its JavaScript heap per connection, each read after a full collection and 3 s of quiet.
 */
import { type ChildProcess, fork } from "node:child_process";
import { constants } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { SERVER_NODE_FLAGS } from "../src/bin/node-flags.js";
import { writeBenchCertificate } from "./lib/certificate.js";
import { benchOptions } from "./lib/options.js";
import { makeTempDir, removeTempDir, sleep } from "./lib/processes.js";

const USAGE = "usage: node dist/bench/tls-floor.js [--connections 3000] [--rounds 5] [--answer-bytes 600]";
/** Where bin/switchboard looks for jemalloc by default. */
const JEMALLOC_PLACES = [
  "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
  "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
  "/usr/lib64/libjemalloc.so.2",
  "/usr/lib/libjemalloc.so.2",
  "/usr/local/lib/libjemalloc.so.2",
];
const JEMALLOC = JEMALLOC_PLACES.find((place) => existsSync(place));
const CLIENT_WRITE = "x".repeat(300);
const SETTLE_MS = 3000;

type Upgrade = "direct TLS" | "STARTTLS";

interface Reading {
  rss: number;
  heap: number;
  connections: number;
}

/** The server child: answers each of the client's first `rounds` writes with one of its own. */
function serve(): void {
  const [certFile, keyFile, upgrade, roundsText, answerText] = process.argv.slice(3) as [
    string,
    string,
    Upgrade,
    string,
    string,
  ];
  const rounds = Number(roundsText);
  const answer = "y".repeat(Number(answerText));
  const options = {
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    secureOptions: constants.SSL_OP_NO_TICKET,
  };
  const context = tls.createSecureContext(options);
  const held: tls.TLSSocket[] = [];
  const hold = (socket: tls.TLSSocket) => {
    held.push(socket);
    let answered = 0;
    socket.on("data", () => {
      if (answered++ < rounds) socket.write(answer);
    });
    socket.on("error", () => undefined);
  };
  const server =
    upgrade === "direct TLS"
      ? tls.createServer(options, hold)
      : net.createServer((raw) => {
          // The client's first byte asks for the upgrade; one byte answers it, in the clear.
          raw.once("data", () => {
            raw.write("p");
            const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
            secure.once("secure", () => hold(secure));
            secure.on("error", () => undefined);
          });
        });
  server.listen(0, "127.0.0.1", () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
  process.on("message", () => {
    (globalThis as { gc?: () => void }).gc?.();
    setTimeout(() => {
      const pages = Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]);
      const reading: Reading = {
        rss: pages * 4096,
        heap: process.memoryUsage().heapUsed,
        connections: held.length,
      };
      process.send?.(reading);
    }, SETTLE_MS);
  });
}

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m as T));
    child.once("exit", (code) => reject(new Error(`the server exited (${code})`)));
  });
}

async function connect(port: number, upgrade: Upgrade, rounds: number): Promise<tls.TLSSocket> {
  let socket: tls.TLSSocket;
  if (upgrade === "direct TLS") {
    socket = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
  } else {
    const raw = net.connect(port, "127.0.0.1");
    await new Promise((resolve) => raw.once("connect", resolve));
    raw.write("s");
    await new Promise((resolve) => raw.once("data", resolve));
    socket = tls.connect({ socket: raw, rejectUnauthorized: false });
  }
  await new Promise((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  for (let i = 0; i < rounds; i++) {
    socket.write(CLIENT_WRITE);
    await new Promise((resolve) => socket.once("data", resolve));
  }
  return socket;
}

async function measure(
  files: { certFile: string; keyFile: string },
  upgrade: Upgrade,
  allocator: "jemalloc" | "system",
  o: { connections: number; rounds: number; "answer-bytes": number },
): Promise<{ rssPerConnection: number; heapPerConnection: number }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.MALLOC_CONF;
  if (allocator === "jemalloc" && JEMALLOC !== undefined) {
    env.LD_PRELOAD = JEMALLOC;
    env.MALLOC_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0";
  }
  const self = fileURLToPath(import.meta.url);
  const server = fork(
    self,
    ["--serve", files.certFile, files.keyFile, upgrade, String(o.rounds), String(o["answer-bytes"])],
    {
      env,
      execArgv: [...SERVER_NODE_FLAGS, "--expose-gc"],
    },
  );
  const held: tls.TLSSocket[] = [];
  try {
    const { port } = await nextMessage<{ port: number }>(server);
    await sleep(2000);
    server.send("read");
    const before = await nextMessage<Reading>(server);
    for (let i = 0; i < o.connections; i += 50) {
      const batch = Math.min(50, o.connections - i);
      held.push(
        ...(await Promise.all(Array.from({ length: batch }, () => connect(port, upgrade, o.rounds)))),
      );
    }
    await sleep(SETTLE_MS);
    server.send("read");
    const after = await nextMessage<Reading>(server);
    if (after.connections !== o.connections)
      throw new Error(`the server holds ${after.connections} connections, not ${o.connections}`);
    return {
      rssPerConnection: (after.rss - before.rss) / o.connections,
      heapPerConnection: (after.heap - before.heap) / o.connections,
    };
  } finally {
    for (const s of held) s.destroy();
    server.kill();
  }
}

async function main(): Promise<void> {
  const o = benchOptions(process.argv.slice(2), USAGE, {
    numbers: {
      connections: { default: 3000, kind: "positive count" },
      rounds: { default: 5, kind: "count" },
      "answer-bytes": { default: 600, kind: "positive count" },
    },
    strings: [],
  });
  const dir = makeTempDir("tls-floor");
  try {
    const files = await writeBenchCertificate(dir, "bench.local");
    const allocators: ("jemalloc" | "system")[] = JEMALLOC ? ["jemalloc", "system"] : ["system"];
    if (!JEMALLOC) console.log(`no jemalloc in ${JEMALLOC_PLACES.join(", ")}: the system's malloc only`);
    console.log(
      `${o.connections} idle connections, ${o.rounds} rounds of ${CLIENT_WRITE.length} / ${o["answer-bytes"]} bytes each`,
    );
    for (const upgrade of ["direct TLS", "STARTTLS"] as const) {
      for (const allocator of allocators) {
        const r = await measure(files, upgrade, allocator, o);
        const name = allocator === "jemalloc" ? "jemalloc, decay 0" : "system malloc";
        console.log(
          `${upgrade}, ${name}: ${(r.rssPerConnection / 1024).toFixed(1)} KiB RSS per connection, ` +
            `of which JavaScript heap ${(r.heapPerConnection / 1024).toFixed(1)} KiB`,
        );
      }
    }
  } finally {
    removeTempDir(dir);
  }
}

if (process.argv[2] === "--serve") serve();
else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
