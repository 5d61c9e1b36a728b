/**
 * The servers of the federation phases: two servers (Switchboard or Prosody) on two loopback
 * addresses, each with a certificate from a CA made for the run, each trusting that CA, so
 * every link is TLS with SASL EXTERNAL, as between two production servers. Switchboard finds
 * the other server through `s2sRoutes`; Prosody, which resolves other domains through DNS
 * only, runs in a mount namespace whose /etc/resolv.conf names the run's DNS server (SRV and A
 * records for every domain of both servers). Clients log in over plaintext on loopback: only
 * the link between the servers is measured.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { AccountSet } from "../loadgen/protocol.js";
import { spawnPinned, stopProcess, trackChild, waitForPort } from "./processes.js";
import { PROSODY, prosodyConfig, writeProsodyAccounts } from "./prosody.js";
import type { FeatureSet } from "./settings.js";
import { ROOT, switchboardConfig } from "./switchboard.js";

const execFileAsync = promisify(execFile);

export type FederationKind = "switchboard" | "prosody";

/** Where a server of the pair listens, for the other one and for the clients. */
export interface FederationAddress {
  domain: string;
  /** More domains it serves (each with account 1 only). */
  hosts: string[];
  host: string;
  c2sPort: number;
  s2sPort: number;
}

export interface FederationServerSpec extends FederationAddress {
  kind: FederationKind;
  /** Private directory (config, data, logs). */
  dir: string;
  accounts: AccountSet;
  features: FeatureSet;
  /** Certificate for the domain and its subdomains, from the run's CA. */
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The other server of the pair. */
  peer: FederationAddress;
  /** A resolv.conf naming the run's DNS server (Prosody only). */
  resolvConf: string;
}

export interface RunningFederationServer {
  spec: FederationServerSpec;
  child: ChildProcess;
  logFile: string;
}

/** The domain → address map of the other server's domains, in Switchboard's YAML. */
function routesYaml(peer: FederationAddress): string {
  const route = `"${peer.host}:${peer.s2sPort}"`;
  return [peer.domain, ...peer.hosts].map((d) => `  ${d}: ${route}`).join("\n");
}

export function switchboardFederationConfig(spec: FederationServerSpec): string {
  const tls = `{ certFile: ${JSON.stringify(spec.certFile)}, keyFile: ${JSON.stringify(spec.keyFile)} }`;
  const hosts = spec.hosts.map((d) => `  - { domain: ${d}, tls: ${tls} }`).join("\n");
  return `${switchboardConfig({ certFile: spec.certFile, keyFile: spec.keyFile, features: spec.features })}${
    spec.hosts.length > 0 ? `hosts:\n${hosts}\n` : ""
  }s2sRoutes:\n${routesYaml(spec.peer)}\n${S2S_LIMITS_OFF}`;
}

/**
 * The bench measures what one link carries: the per-domain rate limits (1,000 stanzas/s by
 * default) are lifted, as the c2s limits are (Prosody has no such limit without mod_limits).
 */
const S2S_LIMITS_OFF = `modules:
  s2s:
    domainRate: { stanzasPerSecond: 0, bytesPerSecond: 0 }
`;

async function prepareSwitchboard(spec: FederationServerSpec): Promise<string> {
  const config = path.join(spec.dir, "switchboard.yaml");
  await writeFile(config, switchboardFederationConfig(spec));
  const { prefix, passwordPrefix, count } = spec.accounts;
  const lines: string[] = [];
  for (let i = 1; i <= count; i++) lines.push(`${prefix}${i},${passwordPrefix}${i}`);
  for (const host of spec.hosts) lines.push(`${prefix}1@${host},${passwordPrefix}1`);
  const file = path.join(spec.dir, "accounts.csv");
  await writeFile(file, `${lines.join("\n")}\n`);
  const cli = path.join(ROOT, "dist", "src", "bin", "switchboard.js");
  const args = [cli, "user", "import", file, "--config", config, "--data-dir", path.join(spec.dir, "data")];
  try {
    const running = execFileAsync(process.execPath, [...args, "--domain", spec.domain], {
      cwd: spec.dir,
      maxBuffer: 16 * 1024 * 1024,
    });
    trackChild(running.child);
    await running;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`switchboard user import failed: ${e.stderr || e.stdout || e.message}`);
  }
  return config;
}

async function startSwitchboard(spec: FederationServerSpec, cpu: number): Promise<RunningFederationServer> {
  const config = await prepareSwitchboard(spec);
  const logFile = path.join(spec.dir, "switchboard.log");
  const env = { ...process.env };
  delete env.SWITCHBOARD_ALLOCATOR;
  const child = spawnPinned(
    path.join(ROOT, "bin", "switchboard"),
    [
      "start",
      "--config",
      config,
      "--domain",
      spec.domain,
      "--data-dir",
      path.join(spec.dir, "data"),
      "--bind",
      spec.host,
      "--c2s-port",
      String(spec.c2sPort),
      "--c2s-tls-port",
      "0",
      "--http-port",
      "0",
      "--component-port",
      "0",
      "--s2s-port",
      String(spec.s2sPort),
      "--s2s-ca",
      spec.caFile,
      "--allow-plaintext",
      "--log-level",
      "warn",
    ],
    { cpu, cwd: spec.dir, env, logFile },
  );
  return { spec, child, logFile };
}

async function startProsody(spec: FederationServerSpec, cpu: number): Promise<RunningFederationServer> {
  await mkdir(path.join(spec.dir, "certs"), { recursive: true });
  await writeProsodyAccounts(spec.dir, spec.domain, spec.accounts);
  for (const host of spec.hosts) await writeProsodyAccounts(spec.dir, host, { ...spec.accounts, count: 1 });
  const config = path.join(spec.dir, "prosody.cfg.lua");
  const setup = {
    dir: spec.dir,
    domain: spec.domain,
    host: spec.host,
    accounts: spec.accounts,
    certFile: spec.certFile,
    keyFile: spec.keyFile,
    features: spec.features,
  };
  await writeFile(
    config,
    prosodyConfig(setup, spec.c2sPort, "plaintext", {
      port: spec.s2sPort,
      caFile: spec.caFile,
      hosts: spec.hosts,
    }),
  );
  const logFile = path.join(spec.dir, "prosody.stdout.log");
  // unshare, sh and taskset each exec the next: the pid is Prosody's own.
  const script = `mount --bind "$0" /etc/resolv.conf && exec "$@"`;
  const child = spawnPinned(
    "unshare",
    ["-m", "sh", "-c", script, spec.resolvConf, PROSODY, "-F", "--config", config],
    { cpu, cwd: spec.dir, logFile },
  );
  return { spec, child, logFile };
}

/**
 * Longest wait for a server to listen: Switchboard with a few hundred hosts loads each one's
 * certificate and modules first, which on a busy machine takes well over the 30 s of one host.
 */
const START_TIMEOUT_MS = 180_000;

/** Starts the server pinned to `cpu`; resolves once its client and server ports accept connections. */
export async function startFederationServer(
  spec: FederationServerSpec,
  cpu: number,
): Promise<RunningFederationServer> {
  const running =
    spec.kind === "switchboard" ? await startSwitchboard(spec, cpu) : await startProsody(spec, cpu);
  try {
    await waitForPort(spec.host, spec.c2sPort, running.child, START_TIMEOUT_MS);
    await waitForPort(spec.host, spec.s2sPort, running.child, START_TIMEOUT_MS);
  } catch (err) {
    await stopProcess(running.child, 2_000);
    console.error(`[federation] ${spec.kind} ${spec.domain} log tail:\n${logTail(running)}`);
    throw new Error(`${spec.kind} on ${spec.host}: ${(err as Error).message}`);
  }
  return running;
}

/** Where Prosody writes its own log (warnings and errors). */
function prosodyLog(spec: FederationServerSpec): string {
  return path.join(spec.dir, "prosody.log");
}

export function logFilesOf(server: RunningFederationServer): string[] {
  return server.spec.kind === "prosody" ? [server.logFile, prosodyLog(server.spec)] : [server.logFile];
}

export function logTail(server: RunningFederationServer, lines = 20): string {
  const out: string[] = [];
  for (const file of logFilesOf(server)) {
    try {
      out.push(...readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines));
    } catch {
      // not written
    }
  }
  return out.join("\n");
}
