/**
 * Prosody 0.12 as the reference server: a private config in the run's temp dir (never the
 * system config, data or service), loopback c2s only, no s2s but in the federation phases, a module set comparable to
 * Switchboard's, rate limits raised out of the way, and accounts written directly in the
 * internal_hashed format (SCRAM-SHA-1 stored/server keys, as `prosodyctl adduser` would).
 */
import type { ChildProcess } from "node:child_process";
import { pbkdf2, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { runPool } from "../loadgen/pool.js";
import type { AccountSet } from "../loadgen/protocol.js";
import { spawnPinned, waitForPort } from "./processes.js";
import { scramServerKeys } from "./scram-keys.js";
import type { BenchServer, ServerSetup } from "./server.js";
import type { Transport } from "./settings.js";

export const PROSODY = "/usr/bin/prosody";
const VERSION_FILE = "/usr/lib/prosody/prosody.version";
export const PROSODY_ITERATIONS = 10_000;

const pbkdf2Async = promisify(pbkdf2);

/** Prosody's datamanager path encoding: every non-alphanumeric byte as %xx. */
function encodePathPart(s: string): string {
  return s.replace(/\W/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function luaString(s: string): string {
  return JSON.stringify(s); // the values used here are ASCII without escapes Lua reads differently
}

/** Server-to-server settings of a Prosody that federates (the federation phases). */
export interface ProsodyS2s {
  port: number;
  /** CA of the other servers' certificates: links authenticate with SASL EXTERNAL only. */
  caFile: string;
  /** More VirtualHosts beside the setup's domain. */
  hosts: string[];
}

export function prosodyConfig(
  setup: ServerSetup,
  port: number,
  transport: Transport = "plaintext",
  s2s?: ProsodyS2s,
): string {
  const p = (name: string) => luaString(path.join(setup.dir, name));
  const tls = transport === "starttls" || transport === "tls";
  const websocket = transport === "websocket";
  // Federation needs the certificate (and mod_tls) whatever the client transport.
  const certificate = tls || s2s !== undefined;
  return `-- Written by the Switchboard bench for one run; not a production config.
run_as_root = true -- the bench may run as root; Prosody refuses to otherwise
daemonize = false
pidfile = ${p("prosody.pid")}
data_path = ${p("data")}
log = { { levels = { min = "warn" }, to = "file", filename = ${p("prosody.log")} } }

interfaces = { "${setup.host}" }
c2s_ports = { ${transport === "plaintext" || transport === "starttls" ? port : ""} }
c2s_direct_tls_ports = { ${transport === "tls" ? port : ""} }
legacy_ssl_ports = { }
s2s_ports = { ${s2s?.port ?? ""} }
component_ports = { }
http_ports = { ${websocket ? port : ""} }
http_interfaces = { "${setup.host}" }
https_ports = { }${
    websocket
      ? `
-- XMPP over WebSocket (mod_websocket) at /xmpp-websocket on the HTTP port; loopback clients
-- count as secure, as Switchboard counts them (as behind a TLS-terminating proxy).
consider_websocket_secure = true`
      : ""
  }
network_settings = { tcp_backlog = 511 } -- as Node's default listen backlog

authentication = "internal_hashed" -- SCRAM-SHA-1 (password_hash default), default_iteration_count below
default_iteration_count = ${PROSODY_ITERATIONS}
storage = "internal"
c2s_require_encryption = ${tls || websocket} -- required on the TLS transports (and met by WebSocket, above), as in production
${certificate ? `ssl = { certificate = ${luaString(setup.certFile)}; key = ${luaString(setup.keyFile)};${s2s ? ` cafile = ${luaString(s2s.caFile)};` : ""} } -- Prosody's own TLS defaults otherwise` : ""}
allow_registration = false

-- Roughly what Switchboard runs: roster, presence, messages, offline, disco, ping, version,
-- time, last activity, vCard, private XML, blocking; STARTTLS (mod_tls) on the TLS transports;
-- s2s only in the federation phases.
modules_enabled = {
  "roster"; "saslauth"; "disco"; "ping"; "version"; "time"; "lastactivity";
  "vcard"; "private"; "blocklist"; "limits";${certificate ? ' "tls";' : ""}${websocket ? ' "websocket";' : ""}${
    setup.features === "mobile"
      ? `
  -- The mobile feature set, as Switchboard runs it by default: stream management, carbons,
  -- the message archive (every message, as Switchboard's default), client state indication.
  "smacks"; "carbons"; "mam"; "csi_simple";`
      : ""
  }
}
${setup.features === "mobile" ? "default_archive_policy = true\n" : ""}
${
  s2s
    ? `-- Links encrypted and authenticated by certificate (SASL EXTERNAL), as Switchboard's with --s2s-ca.
s2s_require_encryption = true
s2s_secure_auth = true`
    : `modules_disabled = { "s2s"; "s2s_auth_certs" }`
}

-- mod_limits stays loaded (as in a real deployment) but far above what the bench sends.
limits = {
  c2s = { rate = "100mb/s"; burst = "10s" };${
    s2s
      ? `
  s2sin = { rate = "100mb/s"; burst = "10s" };`
      : ""
  }
}

${[setup.domain, ...(s2s?.hosts ?? [])].map((d) => `VirtualHost ${luaString(d)}`).join("\n")}
`;
}

/** The Lua table file internal_hashed keeps per account. */
export function accountFile(fields: {
  salt: string;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}): string {
  return `return {
\t["iteration_count"] = ${fields.iterations};
\t["salt"] = ${luaString(fields.salt)};
\t["server_key"] = "${fields.serverKey.toString("hex")}";
\t["stored_key"] = "${fields.storedKey.toString("hex")}";
};
`;
}

/** Writes the accounts of `domain` into the data dir under `dir`, as internal_hashed keeps them. */
export async function writeProsodyAccounts(dir: string, domain: string, accounts: AccountSet): Promise<void> {
  const accountsDir = path.join(dir, "data", encodePathPart(domain), "accounts");
  await mkdir(accountsDir, { recursive: true });
  const { prefix, passwordPrefix, count } = accounts;
  // PBKDF2 runs on libuv's thread pool, several at a time.
  await runPool(count, 8, async (k) => {
    const i = k + 1;
    const salt = randomUUID(); // Prosody's own salts are UUID strings used as raw bytes
    const salted = await pbkdf2Async(`${passwordPrefix}${i}`, salt, PROSODY_ITERATIONS, 20, "sha1");
    const keys = scramServerKeys(salted);
    await writeFile(
      path.join(accountsDir, `${encodePathPart(`${prefix}${i}`)}.dat`),
      accountFile({ salt, iterations: PROSODY_ITERATIONS, ...keys }),
    );
  });
}

export class ProsodyServer implements BenchServer {
  readonly name = "prosody";
  readonly passwordStorage = `SCRAM-SHA-1 keys (internal_hashed), ${PROSODY_ITERATIONS} iterations`;
  private setup: ServerSetup | undefined;

  unavailable(): string | undefined {
    return existsSync(PROSODY) ? undefined : `${PROSODY} not found (Debian package "prosody")`;
  }

  version(): string {
    try {
      return readFileSync(VERSION_FILE, "utf8").trim();
    } catch {
      return "unknown";
    }
  }

  async prepare(setup: ServerSetup): Promise<void> {
    this.setup = setup;
    // Prosody indexes certs/ next to its config at start; the certificate is configured by path.
    await mkdir(path.join(setup.dir, "certs"), { recursive: true });
    await writeProsodyAccounts(setup.dir, setup.domain, setup.accounts);
  }

  async start(cpu: number, port: number, transport: Transport): Promise<ChildProcess> {
    const setup = this.requireSetup();
    await writeFile(path.join(setup.dir, "prosody.cfg.lua"), prosodyConfig(setup, port, transport));
    const child = spawnPinned(PROSODY, ["-F", "--config", path.join(setup.dir, "prosody.cfg.lua")], {
      cpu,
      cwd: setup.dir,
      logFile: path.join(setup.dir, "prosody.stdout.log"),
    });
    await waitForPort(setup.host, port, child, 30_000);
    return child;
  }

  logFiles(): string[] {
    const setup = this.requireSetup();
    return ["prosody.log", "prosody.stdout.log"].map((f) => path.join(setup.dir, f));
  }

  logTail(lines: number): string {
    const out: string[] = [];
    for (const file of this.logFiles()) {
      try {
        out.push(...readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines));
      } catch {
        // not written
      }
    }
    return out.join("\n");
  }

  private requireSetup(): ServerSetup {
    if (!this.setup) throw new Error("prosody: prepare() first");
    return this.setup;
  }
}
