/**
 * Prosody (Debian's `prosody`) as a federation peer for one test: a temporary configuration,
 * data and log directory, its own loopback address, certificates from the test's CA, and a
 * mount namespace whose /etc/resolv.conf names the test's DNS server (Prosody resolves other
 * domains through DNS only). Needs root for the namespace.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS } from "./server.js";
import { commandSucceeds, requirePeer } from "./services.js";

/** Running a peer in its own mount namespace (to give it a resolv.conf) needs root and unshare. */
export function namespaceCheck(): true | string {
  if (process.getuid?.() !== 0) return "the test runs peers in a mount namespace, which needs root";
  return commandSucceeds("unshare", ["-m", "true"]);
}

export const prosodySkip = await requirePeer("prosody (Debian package prosody)", () => {
  const found = commandSucceeds("prosodyctl", ["about"]);
  if (found !== true) return found;
  return namespaceCheck();
});

/** Runs `command` in a mount namespace where /etc/resolv.conf is `resolvConf`. */
export function spawnWithResolvConf(
  resolvConf: string,
  command: string[],
  opts: { env?: NodeJS.ProcessEnv; log: string },
): ChildProcess {
  const script = `mount --bind "$0" /etc/resolv.conf && exec "$@"`;
  const proc = spawn("unshare", ["-m", "sh", "-c", script, resolvConf, ...command], {
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = (d: Buffer) => writeFileSync(opts.log, d, { flag: "a" });
  proc.stdout!.on("data", out);
  proc.stderr!.on("data", out);
  return proc;
}

export async function waitForTcp(
  host: string,
  port: number,
  what: string,
  proc: ChildProcess,
  log: string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null)
      throw new Error(`${what} exited (${proc.exitCode}); log ${log}:\n${tail(log)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not listen on ${host}:${port} within 30 s; log ${log}:\n${tail(log)}`);
}

export function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export interface ProsodyOptions {
  name: string;
  domain: string;
  host: string;
  c2sPort: number;
  s2sPort: number;
  certFile: string;
  keyFile: string;
  /** CA file Prosody trusts for peers. */
  caFile: string;
  resolvConf: string;
  /** s2s_secure_auth: only peers whose certificate authenticates them (no dialback). */
  secureAuth: boolean;
}

export class ProsodyServer {
  private constructor(
    readonly opts: ProsodyOptions,
    readonly dir: string,
    readonly configFile: string,
    readonly logFile: string,
    private readonly proc: ChildProcess,
  ) {}

  /** What the @xmpp/client helper needs to log in (domain, address, ports). */
  get endpoint(): { domain: string; host: string; c2sPort: number; c2sTlsPort: number } {
    return { domain: this.opts.domain, host: this.opts.host, c2sPort: this.opts.c2sPort, c2sTlsPort: 0 };
  }

  static async start(opts: ProsodyOptions): Promise<ProsodyServer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), `switchboard-prosody-${opts.name}-`));
    mkdirSync(path.join(dir, "data"));
    mkdirSync(ARTIFACTS, { recursive: true });
    const logFile = path.join(ARTIFACTS, `${opts.name}.log`);
    writeFileSync(logFile, "");
    const lua = (s: string) => JSON.stringify(s);
    const configFile = path.join(dir, "prosody.cfg.lua");
    writeFileSync(
      configFile,
      [
        "run_as_root = true",
        `pidfile = ${lua(path.join(dir, "prosody.pid"))}`,
        `data_path = ${lua(path.join(dir, "data"))}`,
        `log = { debug = ${lua(logFile)} }`,
        `c2s_ports = { ${opts.c2sPort} }`,
        `c2s_interfaces = { ${lua(opts.host)} }`,
        `s2s_ports = { ${opts.s2sPort} }`,
        `s2s_interfaces = { ${lua(opts.host)} }`,
        "c2s_direct_tls_ports = { }",
        "s2s_direct_tls_ports = { }",
        'modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "offline", "ping", "blocklist", "presence" }',
        'modules_disabled = { "s2s_bidi", "posix" }',
        'authentication = "internal_hashed"',
        'storage = "internal"',
        "c2s_require_encryption = true",
        "s2s_require_encryption = true",
        `s2s_secure_auth = ${opts.secureAuth}`,
        `ssl = { cafile = ${lua(opts.caFile)} }`,
        `VirtualHost ${lua(opts.domain)}`,
        `  ssl = { certificate = ${lua(opts.certFile)}, key = ${lua(opts.keyFile)}, cafile = ${lua(opts.caFile)} }`,
        "",
      ].join("\n"),
    );
    const proc = spawnWithResolvConf(opts.resolvConf, ["prosody", "-F", "--config", configFile], {
      log: logFile,
    });
    const server = new ProsodyServer(opts, dir, configFile, logFile, proc);
    try {
      await waitForTcp(opts.host, opts.c2sPort, "prosody", proc, logFile);
    } catch (err) {
      proc.kill("SIGKILL");
      throw err;
    }
    return server;
  }

  register(user: string, password: string): void {
    execFileSync("prosodyctl", ["--config", this.configFile, "register", user, this.opts.domain, password], {
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
  }

  logTail(): string {
    return tail(this.logFile);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
