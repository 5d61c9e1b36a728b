/**
 * ejabberd (Debian's `ejabberd`) as a federation peer for one test: its own Erlang node name,
 * configuration, spool and log directories (owned by the ejabberd user, which ejabberdctl
 * switches to), its own loopback address, certificates from the test's CA, and an inetrc
 * whose resolv.conf names the test's DNS server for SRV lookups (Erlang's resolver); address
 * lookups go through the C library, so ejabberd also runs in a mount namespace whose
 * /etc/resolv.conf names that server. Needs root (the namespace; ejabberdctl runs as root or
 * ejabberd).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { namespaceCheck, tail, waitForTcp } from "./prosody.js";
import { ARTIFACTS } from "./server.js";
import { commandSucceeds, requirePeer } from "./services.js";

export const ejabberdSkip = await requirePeer("ejabberd (Debian package ejabberd)", () => {
  if (process.getuid?.() !== 0) return "ejabberdctl runs only as root or as the ejabberd user";
  const found = commandSucceeds("sh", ["-c", "command -v ejabberdctl && id ejabberd"]);
  if (found !== true) return found;
  return namespaceCheck();
});

export interface EjabberdOptions {
  name: string;
  domain: string;
  host: string;
  c2sPort: number;
  s2sPort: number;
  certFile: string;
  keyFile: string;
  caFile: string;
  resolvConf: string;
}

export class EjabberdServer {
  private constructor(
    readonly opts: EjabberdOptions,
    readonly dir: string,
    readonly node: string,
    readonly logFile: string,
    private readonly proc: ChildProcess,
  ) {}

  get endpoint(): { domain: string; host: string; c2sPort: number; c2sTlsPort: number } {
    return { domain: this.opts.domain, host: this.opts.host, c2sPort: this.opts.c2sPort, c2sTlsPort: 0 };
  }

  private ctl(...args: string[]): string {
    const cfg = path.join(this.dir, "cfg");
    return execFileSync(
      "ejabberdctl",
      ["--config-dir", cfg, "--ctl-config", path.join(cfg, "ejabberdctl.cfg"), "--node", this.node, ...args],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 },
    );
  }

  static async start(opts: EjabberdOptions): Promise<EjabberdServer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), `switchboard-ejabberd-${opts.name}-`));
    const cfg = path.join(dir, "cfg");
    for (const d of ["cfg", "logs", "spool"]) mkdirSync(path.join(dir, d));
    const certFile = path.join(cfg, "server.crt");
    const keyFile = path.join(cfg, "server.key");
    const caFile = path.join(cfg, "ca.pem");
    copyFileSync(opts.certFile, certFile);
    copyFileSync(opts.keyFile, keyFile);
    copyFileSync(opts.caFile, caFile);
    copyFileSync(opts.resolvConf, path.join(cfg, "resolv.conf"));
    const node = `sbtest${process.pid}x${Math.floor(Math.random() * 1e6)}@localhost`;
    const q = (s: string) => JSON.stringify(s);
    writeFileSync(
      path.join(cfg, "ejabberd.yml"),
      [
        `hosts: [${q(opts.domain)}]`,
        "loglevel: debug",
        "listen:",
        `  - port: ${opts.c2sPort}`,
        `    ip: ${q(opts.host)}`,
        "    module: ejabberd_c2s",
        "    starttls_required: true",
        `  - port: ${opts.s2sPort}`,
        `    ip: ${q(opts.host)}`,
        "    module: ejabberd_s2s_in",
        `certfiles: [${q(certFile)}, ${q(keyFile)}]`,
        `ca_file: ${q(caFile)}`,
        "auth_method: internal",
        "s2s_use_starttls: required",
        "acl:",
        "  local:",
        '    user_regexp: ""',
        "access_rules:",
        "  local:",
        "    allow: local",
        "  c2s:",
        "    allow: all",
        "  s2s:",
        "    allow: all",
        "modules:",
        "  mod_roster: {}",
        "  mod_offline: {}",
        "  mod_disco: {}",
        "  mod_ping: {}",
        "  mod_s2s_dialback: {}",
        "",
      ].join("\n"),
    );
    writeFileSync(
      path.join(cfg, "ejabberdctl.cfg"),
      [
        `EJABBERD_PID_PATH=${path.join(dir, "ejabberd.pid")}`,
        `EJABBERD_CONFIG_PATH=${path.join(cfg, "ejabberd.yml")}`,
        `ERLANG_NODE=${node}`,
        "",
      ].join("\n"),
    );
    // ejabberdctl points ERL_INETRC at the configuration directory's inetrc: the resolver there.
    writeFileSync(
      path.join(cfg, "inetrc"),
      `{resolv_conf, ${q(path.join(cfg, "resolv.conf"))}}.\n{lookup, [file, dns]}.\n`,
    );
    const uid = Number(execFileSync("id", ["-u", "ejabberd"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "ejabberd"], { encoding: "utf8" }).trim());
    chownTree(dir, uid, gid);
    mkdirSync(ARTIFACTS, { recursive: true });
    const logFile = path.join(ARTIFACTS, `${opts.name}.log`);
    writeFileSync(logFile, "");
    const script = `mount --bind "$0" /etc/resolv.conf && exec "$@"`;
    const proc = spawn(
      "unshare",
      [
        "-m",
        "sh",
        "-c",
        script,
        opts.resolvConf,
        "ejabberdctl",
        "--config-dir",
        cfg,
        "--ctl-config",
        path.join(cfg, "ejabberdctl.cfg"),
        "--config",
        path.join(cfg, "ejabberd.yml"),
        "--logs",
        path.join(dir, "logs"),
        "--spool",
        path.join(dir, "spool"),
        "--node",
        node,
        "foreground",
      ],
      { stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    const out = (d: Buffer) => writeFileSync(logFile, d, { flag: "a" });
    proc.stdout!.on("data", out);
    proc.stderr!.on("data", out);
    const server = new EjabberdServer(opts, dir, node, logFile, proc);
    try {
      await waitForTcp(opts.host, opts.c2sPort, "ejabberd", proc, logFile);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  register(user: string, password: string): void {
    this.ctl("register", user, this.opts.domain, password);
  }

  logTail(): string {
    return tail(path.join(this.dir, "logs", "ejabberd.log"));
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      try {
        this.ctl("stop");
      } catch {
        // killed below
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (this.proc.exitCode === null) {
        try {
          process.kill(-this.proc.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    try {
      copyFileSync(
        path.join(this.dir, "logs", "ejabberd.log"),
        `${this.logFile.replace(/\.log$/, "")}-ejabberd.log`,
      );
    } catch {
      // no log written
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function chownTree(p: string, uid: number, gid: number): void {
  chownSync(p, uid, gid);
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}
