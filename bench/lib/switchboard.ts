/**
 * Switchboard as the server under test, started from the build in dist/ the way an operator
 * would: a data dir of its own, accounts created with `user import`, c2s in plaintext on
 * loopback (no TLS listener), the same SCRAM iteration count as Prosody, and per-connection
 * rate limits raised out of the way, as they are for Prosody.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SERVER_NODE_FLAGS } from "../../src/bin/node-flags.js";
import { spawnPinned, waitForPort } from "./processes.js";
import { PROSODY_ITERATIONS } from "./prosody.js";
import type { BenchServer, ServerSetup } from "./server.js";

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CLI = path.join(ROOT, "dist", "src", "bin", "switchboard.js");

export function switchboardConfig(): string {
  return `# Written by the Switchboard bench for one run.
scramIterations: ${PROSODY_ITERATIONS}
limits:
  # Far above what the bench sends, as Prosody's mod_limits is configured.
  bytesPerSecond: 104857600
  burstBytes: 1048576000
`;
}

export class SwitchboardServer implements BenchServer {
  readonly name = "switchboard";
  readonly passwordStorage =
    `SCRAM-SHA-1 and SCRAM-SHA-256 keys, ${PROSODY_ITERATIONS} iterations (login uses SCRAM-SHA-1)`;
  private setup: ServerSetup | undefined;

  unavailable(): string | undefined {
    return existsSync(CLI) ? undefined : `${path.relative(process.cwd(), CLI)} not built`;
  }

  version(): string {
    try {
      const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version?: string };
      return pkg.version ?? "unknown";
    } catch {
      return "unknown";
    }
  }

  private configFile(): string {
    return path.join(this.requireSetup().dir, "switchboard.yaml");
  }

  private dataDir(): string {
    return path.join(this.requireSetup().dir, "data");
  }

  async prepare(setup: ServerSetup): Promise<void> {
    this.setup = setup;
    await writeFile(this.configFile(), switchboardConfig());
    const { prefix, passwordPrefix, count } = setup.accounts;
    const lines: string[] = [];
    for (let i = 1; i <= count; i++) lines.push(`${prefix}${i},${passwordPrefix}${i}`);
    const file = path.join(setup.dir, "accounts.csv");
    await writeFile(file, `${lines.join("\n")}\n`);
    const args = [CLI, "user", "import", file, "--config", this.configFile(), "--data-dir", this.dataDir()];
    args.push("--domain", setup.domain);
    try {
      await execFileAsync(process.execPath, args, { cwd: setup.dir, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`switchboard user import failed: ${e.stderr || e.stdout || e.message}`);
    }
  }

  async start(cpu: number, port: number): Promise<ChildProcess> {
    const setup = this.requireSetup();
    const args = [
      CLI,
      "start",
      "--config",
      this.configFile(),
      "--domain",
      setup.domain,
      "--data-dir",
      this.dataDir(),
      "--bind",
      setup.host,
      "--c2s-port",
      String(port),
      "--c2s-tls-port",
      "0",
      "--http-port",
      "0",
      "--component-port",
      "0",
      "--s2s-port",
      "0",
      "--allow-plaintext",
      "--log-level",
      "warn",
    ];
    const child = spawnPinned(process.execPath, [...SERVER_NODE_FLAGS, ...args], {
      cpu,
      cwd: setup.dir,
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
