/**
 * Runs the real server process for an end-to-end test file: a temporary data
 * directory, free loopback ports, the CLI (`switchboard start`, `user add`),
 * the process output kept in test-artifacts/e2e/ for debugging, and a stop
 * that checks the graceful-shutdown contract (SIGTERM → exit code 0, quickly).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

/** The repository root (this file runs from dist/test/helpers/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI = path.join(REPO_ROOT, "dist/src/bin/switchboard.js");
export const ARTIFACTS = path.join(REPO_ROOT, "test-artifacts/e2e");

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 8_000;

export interface ServerOptions {
  /** Names the log file: test-artifacts/e2e/<name>.log. */
  name: string;
  /** Accounts to create once the server is up: name → password. */
  users?: Record<string, string>;
  /** More `start` flags, e.g. ["--max-stanza-size", "65536"]. */
  extraArgs?: string[];
  /** Written to a config file passed with --config (for options without a flag). */
  config?: Record<string, unknown>;
  /** Reuse a data directory (e.g. a restart); default: a fresh temporary one. */
  dataDir?: string;
  /** Delete the data directory after a clean stop (default: only when it was created here). */
  removeDataOnStop?: boolean;
  /** `--storage URL` for the server and the accounts created through the CLI (default: SQLite in the data directory). */
  storage?: string;
  /** The domain served (default localhost) and the loopback address listened on (default 127.0.0.1). */
  domain?: string;
  host?: string;
  /** No --bind: the server listens on its default addresses (127.0.0.1 and ::1). */
  defaultBind?: boolean;
}

export class TestServer {
  domain = "localhost";
  host = "127.0.0.1";
  private exit?: { code: number | null; signal: NodeJS.Signals | null };
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private removeOnStop: boolean;

  constructor(
    readonly proc: ChildProcess,
    readonly dataDir: string,
    readonly c2sPort: number,
    readonly c2sTlsPort: number,
    readonly logFile: string,
    removeDataOnStop: boolean,
    /** The `--storage` URL the server runs on, when not the default. */
    readonly storage?: string,
  ) {
    this.removeOnStop = removeDataOnStop;
    this.exited = new Promise((resolve) => {
      proc.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Creates an account with the CLI, as an administrator would. */
  async addUser(name: string, password: string): Promise<void> {
    await runCli(["user", "add", name, "--password", password, ...this.storageArgs()], this.logFile);
  }

  /** The options that make an admin command act on this server's data. */
  storageArgs(): string[] {
    return ["--data-dir", this.dataDir, ...(this.storage ? ["--storage", this.storage] : [])];
  }

  /** The last lines of the server's output, for failure messages. */
  logTail(lines = 30): string {
    try {
      const text = readFileSync(this.logFile, "utf8").trimEnd().split("\n");
      return text.slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Resolves with the exit status once the process ended by itself (e.g. after a signal sent elsewhere). */
  waitExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    return Promise.race([
      this.exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs).unref()),
    ]);
  }

  /** Sends SIGTERM (once) without waiting. */
  terminate(): void {
    if (this.running) this.proc.kill("SIGTERM");
  }

  /**
   * Graceful stop: SIGTERM, then the process must exit with code 0 within a few
   * seconds. Throws (after killing it) otherwise. `keepData` leaves the data
   * directory for a restart.
   */
  async stop(opts: { keepData?: boolean } = {}): Promise<void> {
    if (!this.running) {
      const { code, signal } = this.exit!;
      throw new Error(
        `the server had already exited (code ${code}, signal ${signal}) before the end of the test; log ${this.logFile}:\n${this.logTail()}`,
      );
    }
    this.proc.kill("SIGTERM");
    const status = await this.waitExit(STOP_TIMEOUT_MS);
    if (!status) {
      this.proc.kill("SIGKILL");
      throw new Error(
        `the server did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM; log ${this.logFile}:\n${this.logTail()}`,
      );
    }
    if (status.code !== 0) {
      throw new Error(
        `after SIGTERM the server exited with code ${status.code} (signal ${status.signal}), expected 0; log ${this.logFile}:\n${this.logTail()}`,
      );
    }
    if (this.removeOnStop && !opts.keepData) rmSync(this.dataDir, { recursive: true, force: true });
    if (opts.keepData) this.removeOnStop = false;
  }

  /** Last resort for after() hooks when a test failed half-way. */
  kill(): void {
    if (this.running) this.proc.kill("SIGKILL");
  }
}

/** `start` flags that turn every listener off: for a test that needs the process, not its ports. */
export const NO_LISTENERS = ["--c2s-port", "0", "--c2s-tls-port", "0", "--http-port", "0"].concat([
  "--component-port",
  "0",
  "--s2s-port",
  "0",
]);

/**
 * Every port this process has handed out: a port is free again once its probe closes, so a
 * later call (the next listener of the same server, still starting) could otherwise be given
 * it a second time, and one of the two listeners would fail to bind.
 */
const handedOut = new Set<number>();

/** Free TCP ports on the loopback interface, different from each other and from any handed out before. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < count) {
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => resolve());
      });
      // Held open until the end, so the kernel does not offer it again in this call.
      servers.push(s);
      const port = (s.address() as net.AddressInfo).port;
      if (handedOut.has(port)) continue;
      handedOut.add(port);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** Runs `switchboard ARGS…` to completion; its output is appended to `logFile`. Rejects on a non-zero exit. */
export function runCli(args: string[], logFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const shown = args.map((a, i) => (args[i - 1] === "--password" ? "***" : a)).join(" ");
      try {
        writeFileSync(logFile, `\n[cli] switchboard ${shown}\n${stdout}${stderr}`, { flag: "a" });
      } catch {
        // the log is a convenience
      }
      if (err) reject(new Error(`switchboard ${shown} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

async function waitForPort(port: number, server: TestServer, host = "127.0.0.1"): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!server.running) {
      throw new Error(`the server exited during startup; log ${server.logFile}:\n${server.logTail()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  server.kill();
  throw new Error(
    `the server did not accept TCP connections on port ${port} within ${READY_TIMEOUT_MS / 1000} s; log ${server.logFile}:\n${server.logTail()}`,
  );
}

const running = new Set<TestServer>();
// A test file that crashes must not leave servers behind.
process.once("exit", () => {
  for (const s of running) s.kill();
});
// Nor one whose after hook failed half-way (a stop that threw before the next stop): the
// servers left would keep this file's process alive through their pipes, and the run would
// wait for it forever. This hook of the file's root test may run before the file's own root
// hooks (those registered later), which stop their servers gracefully: so it only sets a
// timer, which does not keep the process alive and kills what is still running when it fires.
after(() => {
  setTimeout(() => {
    for (const s of running) {
      process.stderr.write(`# a server was left running after the file's tests (killed): ${s.logFile}\n`);
      s.kill();
    }
  }, 30_000).unref();
});

export async function startServer(opts: ServerOptions): Promise<TestServer> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const logFile = path.join(ARTIFACTS, `${opts.name}.log`);
  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), `switchboard-e2e-${opts.name}-`));
  const [c2sPort, c2sTlsPort] = (await freePorts(2)) as [number, number];
  const args = [
    CLI,
    "start",
    "--domain",
    opts.domain ?? "localhost",
    "--data-dir",
    dataDir,
    ...(opts.defaultBind ? [] : ["--bind", opts.host ?? "127.0.0.1"]),
    "--c2s-port",
    String(c2sPort),
    "--c2s-tls-port",
    String(c2sTlsPort),
    "--http-port",
    "0",
    // Tests that run components pass their own --component-port (the last one given wins).
    "--component-port",
    "0",
    // Tests that federate pass their own --s2s-port.
    "--s2s-port",
    "0",
    "--log-level",
    "warn",
  ];
  if (opts.config) {
    const configFile = path.join(dataDir, "e2e-config.yaml");
    // JSON is YAML.
    writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
    args.push("--config", configFile);
  }
  if (opts.storage) args.push("--storage", opts.storage);
  args.push(...(opts.extraArgs ?? []));

  // Append mode: the CLI's output is appended to the same file while the server runs.
  if (ownsDataDir) writeFileSync(logFile, "");
  const log = createWriteStream(logFile, { flags: "a" });
  log.write(`[e2e] ${new Date().toISOString()} node ${args.join(" ")}\n`);
  const proc = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout!.pipe(log, { end: false });
  proc.stderr!.pipe(log, { end: false });
  proc.once("exit", (code, signal) => {
    log.end(`[e2e] exited: code ${code} signal ${signal}\n`);
  });
  const server = new TestServer(
    proc,
    dataDir,
    c2sPort,
    c2sTlsPort,
    logFile,
    opts.removeDataOnStop ?? ownsDataDir,
    opts.storage,
  );
  if (opts.domain) server.domain = opts.domain;
  if (opts.host) server.host = opts.host;
  running.add(server);
  proc.once("exit", () => running.delete(server));

  await waitForPort(c2sPort, server, server.host);
  for (const [name, password] of Object.entries(opts.users ?? {})) await server.addUser(name, password);
  return server;
}

/**
 * Data directories for the nodes of one cluster, holding the same key that seals component
 * secrets, as docs/operations.md says to set them up (the other secrets the nodes must
 * agree on are in the shared storage).
 */
export function clusterDataDirs(names: string[]): string[] {
  const componentKey = randomBytes(32);
  return names.map((name) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), `switchboard-e2e-${name}-`));
    mkdirSync(path.join(dir, "secrets"), { mode: 0o700 });
    writeFileSync(path.join(dir, "secrets", "component-secrets.key"), componentKey, { mode: 0o600 });
    return dir;
  });
}
