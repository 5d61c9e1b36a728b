/**
 * Switchboard as the server under test, started from the build the way an operator would: with
 * the `bin/switchboard` launcher (docs/operations.md), a data dir of its own, accounts created
 * with `user import`, clients on loopback in plaintext, STARTTLS, direct TLS or over WebSocket
 * (ws:// on its HTTP listener), the same SCRAM
 * iteration count as Prosody, and per-connection rate limits raised out of the way, as they are
 * for Prosody.
 *
 * Variants measured beside it in the same run: the launcher told to use the system's malloc
 * (what `npm start` gets where jemalloc is not installed), and another checkout's build (the
 * commit before a change), started the way that checkout starts.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SERVER_NODE_FLAGS } from "../../src/bin/node-flags.js";
import { spawnPinned, trackChild, waitForPort } from "./processes.js";
import { PROSODY_ITERATIONS } from "./prosody.js";
import type { BenchServer, ServerSetup } from "./server.js";
import type { FeatureSet, Transport } from "./settings.js";

const execFileAsync = promisify(execFile);
/** The checkout whose build the bench measures. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The modules the `im` feature set runs without (see FeatureSet). */
export const MOBILE_MODULES = ["stanza-id", "mam", "carbons", "csi", "stream-management", "push"];

/** The bench's configuration file, with a certificate when `tls` names one. */
export function switchboardConfig(tls?: {
  certFile?: string;
  keyFile?: string;
  features?: FeatureSet;
}): string {
  return `# Written by the Switchboard bench for one run.
scramIterations: ${PROSODY_ITERATIONS}
${tls?.features === "im" ? `disabledModules: [${MOBILE_MODULES.join(", ")}]\n` : ""}
# The HTTP listener (open for the WebSocket transport only) serves ws:// as Prosody's does:
# plain HTTP on loopback, as behind a TLS-terminating proxy (RFC 7395 over wss:// otherwise).
http:
  tls: "off"
limits:
  # Far above what the bench sends, as Prosody's mod_limits is configured.
  bytesPerSecond: 104857600
  burstBytes: 1048576000
${
  tls?.certFile && tls.keyFile
    ? `tls:
  certFile: ${JSON.stringify(tls.certFile)}
  keyFile: ${JSON.stringify(tls.keyFile)}
`
    : ""
}`;
}

export interface SwitchboardVariant {
  /** Name in the report. */
  name: string;
  /** Checkout whose build runs (default: this one). */
  root?: string;
  /** SWITCHBOARD_ALLOCATOR for the launcher (default: its own default, auto). */
  allocator?: "auto" | "system";
  /** More environment for the server (e.g. MALLOC_CONF, GLIBC_TUNABLES). */
  env?: Record<string, string>;
}

export class SwitchboardServer implements BenchServer {
  readonly name: string;
  readonly passwordStorage =
    `SCRAM-SHA-1 and SCRAM-SHA-256 keys, ${PROSODY_ITERATIONS} iterations (login uses SCRAM-SHA-1)`;
  private setup: ServerSetup | undefined;
  private readonly root: string;
  private readonly cli: string;
  /** The checkout's launcher; an older checkout without one is started with node and the flags. */
  private readonly launcher: string;

  constructor(private readonly variant: SwitchboardVariant = { name: "switchboard" }) {
    this.name = variant.name;
    this.root = variant.root ? path.resolve(variant.root) : ROOT;
    this.cli = path.join(this.root, "dist", "src", "bin", "switchboard.js");
    this.launcher = path.join(this.root, "bin", "switchboard");
  }

  unavailable(): string | undefined {
    return existsSync(this.cli) ? undefined : `${path.relative(process.cwd(), this.cli)} not built`;
  }

  version(): string {
    let version = "unknown";
    try {
      const pkg = JSON.parse(readFileSync(path.join(this.root, "package.json"), "utf8")) as {
        version?: string;
      };
      version = pkg.version ?? "unknown";
    } catch {
      // unknown
    }
    return this.root === ROOT ? version : `${version} (${this.root})`;
  }

  private configFile(): string {
    return path.join(this.requireSetup().dir, "switchboard.yaml");
  }

  private dataDir(): string {
    return path.join(this.requireSetup().dir, "data");
  }

  async prepare(setup: ServerSetup): Promise<void> {
    this.setup = setup;
    await writeFile(this.configFile(), switchboardConfig(setup));
    const { prefix, passwordPrefix, count } = setup.accounts;
    const lines: string[] = [];
    for (let i = 1; i <= count; i++) lines.push(`${prefix}${i},${passwordPrefix}${i}`);
    const file = path.join(setup.dir, "accounts.csv");
    await writeFile(file, `${lines.join("\n")}\n`);
    const args = [
      this.cli,
      "user",
      "import",
      file,
      "--config",
      this.configFile(),
      "--data-dir",
      this.dataDir(),
    ];
    args.push("--domain", setup.domain);
    try {
      const running = execFileAsync(process.execPath, args, { cwd: setup.dir, maxBuffer: 16 * 1024 * 1024 });
      trackChild(running.child);
      await running;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`switchboard user import failed: ${e.stderr || e.stdout || e.message}`);
    }
  }

  async start(cpu: number, port: number, transport: Transport): Promise<ChildProcess> {
    const setup = this.requireSetup();
    // The clients' port; every other listener closed. WebSocket: the HTTP listener (where
    // /xmpp-websocket is, on by default), no client port.
    const ports =
      transport === "tls"
        ? ["--c2s-port", "0", "--c2s-tls-port", String(port), "--http-port", "0"]
        : transport === "websocket"
          ? ["--c2s-port", "0", "--c2s-tls-port", "0", "--http-port", String(port)]
          : ["--c2s-port", String(port), "--c2s-tls-port", "0", "--http-port", "0"];
    const args = [
      "start",
      "--config",
      this.configFile(),
      "--domain",
      setup.domain,
      "--data-dir",
      this.dataDir(),
      "--bind",
      setup.host,
      ...ports,
      "--component-port",
      "0",
      "--s2s-port",
      "0",
      // TLS is required on the TLS transports, as in production. WebSocket clients on loopback
      // count as secure (as behind a TLS-terminating proxy), so they need no exception either.
      ...(transport === "plaintext" ? ["--allow-plaintext"] : []),
      "--log-level",
      "warn",
    ];
    const env = { ...process.env };
    delete env.SWITCHBOARD_ALLOCATOR;
    if (this.variant.allocator) env.SWITCHBOARD_ALLOCATOR = this.variant.allocator;
    Object.assign(env, this.variant.env);
    // The launcher execs node, so the pid is the server's either way.
    const [command, argv] = existsSync(this.launcher)
      ? [this.launcher, args]
      : [process.execPath, [...SERVER_NODE_FLAGS, this.cli, ...args]];
    const child = spawnPinned(command, argv, {
      cpu,
      cwd: setup.dir,
      env,
      logFile: path.join(setup.dir, "switchboard.log"),
    });
    await waitForPort(setup.host, port, child, 30_000);
    return child;
  }

  logFiles(): string[] {
    return [path.join(this.requireSetup().dir, "switchboard.log")];
  }

  logTail(lines: number): string {
    try {
      return readFileSync(this.logFiles()[0]!, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  private requireSetup(): ServerSetup {
    if (!this.setup) throw new Error("switchboard: prepare() first");
    return this.setup;
  }
}
