#!/usr/bin/env -S node --max-semi-space-size=4
/** The `switchboard` command line: `start` runs the server; every admin command comes from src/commands. */
import os from "node:os";
import path from "node:path";
import { Command, Option } from "commander";
import { count } from "../commands/plural.js";
import { systemClock } from "../core/clock.js";
import type { CommandDefinition } from "../core/commands.js";
import { CommandError, commandErrorOf } from "../core/commands.js";
import { ConfigError, type ServerConfig } from "../core/config.js";
import type { Storage } from "../core/storage/types.js";
import { AdminStore } from "../http/admin-store.js";
import { parseRoutes } from "../modules/s2s/config.js";
import { loadServerConfig } from "../server/config.js";
import { allCommands, standardHttpPlugins, standardModules } from "../server/parts.js";
import { SwitchboardServer } from "../server/server.js";
import { storageOverride } from "../storage/config.js";
import { SchemaTooNewError, StorageUnavailableError } from "../storage/errors.js";
import { describeStorage, openStorage, storageOptionsFrom } from "../storage/index.js";
import { hostForUrl } from "../transports/listen.js";
import { adminTarget, type StartedWith } from "./admin-target.js";
import { allocatorInUse, allocatorLogLine } from "./allocator.js";
import { listenFailureMessage } from "./listen-failure.js";

const program = new Command("switchboard")
  .description("Switchboard: an XMPP instant-messaging network server")
  .showHelpAfterError();

/** Options every command accepts, so each acts on the data of a given server. */
function withConfigOptions(cmd: Command): Command {
  return cmd
    .option("-c, --config <file>", "configuration file (YAML or JSON)")
    .option("--data-dir <dir>", "data directory (database, certificates)")
    .option("--domain <domain>", "the XMPP domain served")
    .option("--storage <url>", "storage: sqlite:PATH (default: under the data directory) or postgres://…");
}

function configFrom(opts: Record<string, unknown>, extra: Record<string, unknown> = {}): ServerConfig {
  return loadServerConfig({
    ...(typeof opts.config === "string" ? { file: opts.config } : {}),
    env: process.env,
    overrides: {
      dataDir: opts.dataDir,
      domain: opts.domain,
      ...(typeof opts.storage === "string" ? { storage: storageOverride(opts.storage) } : {}),
      ...extra,
    },
  });
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a port number: ${v}`);
  return n;
};

withConfigOptions(program.command("start").description("Run the server"))
  .option(
    "--bind <addresses>",
    "listen addresses of the client and HTTP ports, separated by commas (default 127.0.0.1,::1)",
  )
  .option("--c2s-port <port>", "client port with STARTTLS (0 disables)", int)
  .option("--c2s-tls-port <port>", "client port with direct TLS, XEP-0368 (0 disables)", int)
  .option("--http-port <port>", "HTTP port (admin API, WebSocket)", int)
  .option("--component-port <port>", "port for external components, XEP-0114 (0 disables)", int)
  .option("--s2s-port <port>", "port for other servers, RFC 6120 server-to-server (0 disables)", int)
  .option(
    "--s2s-route <DOMAIN=HOST:PORT>",
    "reach a remote domain at HOST:PORT before DNS (repeatable)",
    (v: string, prev: string[] = []) => [...prev, v],
  )
  .addOption(
    new Option("--federation <policy>", "which remote domains may federate").choices([
      "open",
      "allowlist",
      "licensed",
    ]),
  )
  .option("--s2s-ca <file>", "PEM certificates trusted for other servers, beside the system store")
  .option("--allow-plaintext", "let clients log in without TLS (loopback tests only)")
  .option("--allow-registration", "open in-band registration (XEP-0077)")
  .option("--max-stanza-size <bytes>", "largest stanza accepted", int)
  .option("--cluster <url>", "join a cluster through NATS: nats://HOST:PORT (needs --storage postgres://…)")
  .option("--node <name>", "this node's name in the cluster (default: the host name)")
  .addOption(
    new Option("--log-level <level>", "log level").choices([
      "trace",
      "debug",
      "info",
      "warn",
      "error",
      "fatal",
      "silent",
    ]),
  )
  .action(async (opts: Record<string, unknown>) => {
    const config = configFrom(opts, {
      bind: opts.bind,
      c2sPort: opts.c2sPort,
      c2sTlsPort: opts.c2sTlsPort,
      httpPort: opts.httpPort,
      componentPort: opts.componentPort,
      s2sPort: opts.s2sPort,
      ...(Array.isArray(opts.s2sRoute) ? { s2sRoutes: parseRoutes(opts.s2sRoute as string[]) } : {}),
      ...(typeof opts.federation === "string" ? { federation: { policy: opts.federation } } : {}),
      s2sCa: typeof opts.s2sCa === "string" ? path.resolve(opts.s2sCa) : undefined,
      allowPlaintext: opts.allowPlaintext,
      allowRegistration: opts.allowRegistration,
      logLevel: opts.logLevel,
      ...(opts.maxStanzaSize !== undefined ? { limits: { maxStanzaBytes: opts.maxStanzaSize } } : {}),
      ...(opts.cluster !== undefined || opts.node !== undefined
        ? { cluster: { url: opts.cluster, node: opts.node } }
        : {}),
    });
    // The signal handlers come first: a SIGTERM that arrives while the server starts (its
    // listeners may already accept connections) must still end in a graceful stop, not in
    // the default action that kills the process mid-write.
    let server: SwitchboardServer | undefined;
    let stopSignal: string | undefined;
    const stop = (running: SwitchboardServer, signal: string) => {
      running.log.info({ signal }, "shutting down");
      running.stop().then(
        () => process.exit(0),
        (err) => {
          running.log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    const onSignal = (signal: string) => {
      if (stopSignal) return;
      stopSignal = signal;
      if (server) stop(server, signal);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
    // Node opens its debugger on 127.0.0.1:9229 at SIGUSR1, where any local user could run
    // code as the server (a log rotation that signals USR1, as for nginx, would do it); SIGUSR2
    // would end the process. Both are logged and ignored.
    for (const signal of ["SIGUSR1", "SIGUSR2"] as const) {
      process.on(signal, () => {
        const log = server?.log;
        if (log) log.warn({ signal }, `${signal} ignored: it has no meaning to the server`);
      });
    }
    // SIGHUP reads the certificate files again (a renewal), as Prosody's reload does; without a
    // handler it would end the process.
    process.on("SIGHUP", () => {
      if (!server || stopSignal) return;
      const reload = server.reloadCertificates();
      server.log.info(
        { replaced: reload?.replaced ?? [], failed: reload?.failed.map((f) => f.domain) ?? [] },
        "SIGHUP: certificate files read again",
      );
    });
    server = await SwitchboardServer.start(config, {
      modules: standardModules,
      http: { plugins: standardHttpPlugins, commands: allCommands },
    });
    if (stopSignal) {
      stop(server, stopSignal);
      return;
    }
    const allocator = allocatorInUse();
    if (allocator) server.log.info({ ...allocator }, allocatorLogLine(allocator));
    try {
      await printSummary(server, config, {
        configFile: typeof opts.config === "string" ? opts.config : undefined,
        domainGiven: opts.domain !== undefined || process.env.SWITCHBOARD_DOMAIN !== undefined,
        storageGiven: opts.storage !== undefined || process.env.SWITCHBOARD_STORAGE_URL !== undefined,
      });
    } catch (err) {
      // A stop that began meanwhile closes the storage the summary reads; the stop decides the exit code.
      if (!stopSignal) throw err;
    }
  });

async function printSummary(
  server: SwitchboardServer,
  config: ServerConfig,
  started: StartedWith,
): Promise<void> {
  const { addresses, tls } = server;
  const storageName = describeStorage(storageOptionsFrom(config));
  // The admin commands must open the same storage as the server, and know its domain and
  // hosts (an account's address, licences, policy).
  const target = adminTarget(config, started);
  const cli = (args: string) => `npx switchboard ${args} ${target}`;
  const storage = server.services.storage;
  const accounts = await storage.accounts.count();
  const admins = (await new AdminStore(storage, server.services.clock).listAdmins()).map((a) => a.name);
  server.log.info(
    {
      c2sPort: addresses.c2sPort,
      c2sTlsPort: addresses.c2sTlsPort,
      httpPort: addresses.httpPort,
      bind: config.bind,
      dataDir: config.dataDir,
      storage: storageName,
      modules: server.modules.list().length,
      tls: tls ? (tls.selfSigned ? "self-signed" : "configured") : "off",
    },
    "switchboard ready",
  );
  const web = server.http?.url;
  // "127.0.0.1 and [::1] port 5222": every listen address takes the same port.
  const at = (port: number) => `${config.bind.map(hostForUrl).join(" and ")} port ${port}`;
  const lines = [
    "",
    `Switchboard is serving ${config.domain}`,
    addresses.c2sPort !== undefined &&
      `  XMPP clients: ${at(addresses.c2sPort)} (STARTTLS${config.allowPlaintext ? " optional" : " required"})`,
    addresses.c2sTlsPort !== undefined && `  XMPP clients, direct TLS: ${at(addresses.c2sTlsPort)}`,
    addresses.componentPort !== undefined &&
      `  Gateways (XEP-0114 components): port ${addresses.componentPort} on modules.components.bind (loopback); switchboard component add DOMAIN`,
    (addresses.s2sPort !== undefined || addresses.s2sTlsPort !== undefined) &&
      `  Other servers (federation, ${config.federation.policy}): ${[
        addresses.s2sPort !== undefined && at(addresses.s2sPort),
        addresses.s2sTlsPort !== undefined && `${at(addresses.s2sTlsPort)} (direct TLS)`,
      ]
        .filter(Boolean)
        .join(", ")}`,
    web && `  Web: ${web}/ (publisher portal ${web}/portal, admin console ${web}/console)`,
    web && `  Admin API: ${web}/api/v1 (OpenAPI: /api/v1/openapi.json)   Metrics: ${web}/metrics`,
    web &&
      config.http.websocket &&
      `  XMPP over WebSocket: ${web.replace(/^http/, "ws")}/xmpp-websocket${config.http.webChat.enabled ? `   Web chat: ${web}/chat` : ""}`,
    tls &&
      `  Certificate: ${tls.certFile}${tls.selfSigned ? " (self-signed: accept it in your client)" : ""}`,
    tls && `  SHA-256 fingerprint: ${tls.fingerprint}`,
    `  Storage: ${storageName}${target.includes("$SWITCHBOARD_STORAGE_URL") ? " (the commands below read its URL, with the password, from SWITCHBOARD_STORAGE_URL)" : ""}`,
    server.cluster &&
      `  Cluster: node ${server.cluster.node} on ${config.cluster.url} (${count(server.cluster.liveNodes().length, "node")} live; ${cli(`cluster status --cluster ${config.cluster.url}`)})`,
    ...(accounts === 0
      ? [
          `  Create an account: ${cli("user add alice --password 'a-long-secret'")}`,
          `  Then log in as alice@${config.domain} with any XMPP client (server ${config.bind[0]}, port ${addresses.c2sPort ?? addresses.c2sTlsPort}).`,
        ]
      : [
          `  Accounts: ${count(accounts, "account")} (${cli("user list")}); more with ${cli("user add NAME --password PW")}`,
        ]),
    web &&
      (admins.length === 0
        ? `  Console access: ${cli(`admin grant ${accounts === 0 ? "alice" : "NAME"}`)}, then log in at ${web}/console`
        : `  Console: log in at ${web}/console as ${admins.length > 3 ? `one of ${count(admins.length, "admin")}` : admins.join(", ")}`),
    web &&
      config.mail.smtp.host === undefined &&
      `  Mail: no SMTP relay (mail.smtp.host), so mails wait in the outbox: their links are logged here, listed at ${web}/console/mail and by ${cli("mail list")}`,
    "",
  ].filter(Boolean);
  process.stdout.write(lines.join("\n") + "\n");
}

/** The CLI option for an argument: its name in kebab case (minVersion → --min-version). */
const optionName = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A repeatable option collects its values in an array. */
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Who runs CLI commands, for audit logs. */
function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    // No passwd entry (some containers): the numeric id still says who it was.
    return `cli:${process.env.USER ?? process.getuid?.() ?? "unknown"}`;
  }
}

/** Storage for commands that declare they work without it: any use is a bug in the command. */
const noStorage = new Proxy({} as Storage, {
  get(_target, prop) {
    throw new Error(`this command runs without server data (storage.${String(prop)})`);
  },
});

function addAdminCommand(def: CommandDefinition<never>): void {
  let parent = program;
  for (const word of def.name.slice(0, -1)) {
    parent =
      parent.commands.find((c) => c.name() === word) ?? parent.command(word).description(`${word} commands`);
  }
  const leaf = parent.command(def.name.at(-1)!).description(def.description);
  const cmd = def.local ? leaf : withConfigOptions(leaf);
  const positional = def.args.filter((a) => a.positional);
  for (const a of positional) cmd.argument(`<${a.name}>`, a.description);
  const options = def.args.filter((a) => !a.positional);
  for (const a of options) {
    const flags = a.flag ? `--${optionName(a.name)}` : `--${optionName(a.name)} <value>`;
    const description = a.deprecatedFor
      ? `deprecated, the same as --${optionName(a.deprecatedFor)}`
      : a.description;
    if (a.repeatable && !a.flag) cmd.option(flags, description, collect);
    else cmd.option(flags, description);
  }
  cmd.option("--json", "print the result as JSON");
  cmd.action(async (...argv: unknown[]) => {
    const opts = argv[positional.length] as Record<string, unknown>;
    const raw: Record<string, unknown> = {};
    positional.forEach((a, i) => {
      raw[a.name] = argv[i];
    });
    // Commander stores --min-version as minVersion: the argument's own name.
    for (const a of options) if (opts[a.name] !== undefined) raw[a.name] = opts[a.name];
    for (const a of options) {
      if (a.deprecatedFor && opts[a.name] !== undefined) {
        process.stderr.write(
          `switchboard: --${optionName(a.name)} is deprecated: use --${optionName(a.deprecatedFor)}\n`,
        );
      }
    }
    const parsed = def.input.safeParse(raw);
    if (!parsed.success) {
      throw new CommandError(
        parsed.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; "),
      );
    }
    const config = configFrom(def.local ? {} : opts);
    const storageOptions = storageOptionsFrom(config);
    // A command run on an earlier version's database upgrades it first: say so (one line per
    // migration, on stderr so that --json output stays parseable), as the server's log does.
    storageOptions.onMigration = (m) => {
      if (m.upgrade)
        process.stderr.write(
          `switchboard: upgrading the database schema to version ${m.version}: ${m.description}\n`,
        );
    };
    const storage = def.local ? noStorage : await openStorage(storageOptions);
    try {
      const result = await def.run({ config, storage, clock: systemClock, actor: cliActor() }, parsed.data);
      process.stdout.write((opts.json ? JSON.stringify(result.data ?? {}) : result.message) + "\n");
    } finally {
      if (!def.local) await storage.close();
    }
  });
}

for (const def of allCommands) addAdminCommand(def);

program.parseAsync(process.argv).catch((err: unknown) => {
  const refused = commandErrorOf(err) ?? (err instanceof ConfigError ? err : undefined);
  if (refused) {
    process.stderr.write(`switchboard: ${refused.message}\n`);
    process.exit(2);
  }
  const listenFailure = listenFailureMessage(err);
  if (listenFailure) {
    process.stderr.write(`switchboard: ${listenFailure}\n`);
    process.exit(1);
  }
  if (err instanceof StorageUnavailableError || err instanceof SchemaTooNewError) {
    process.stderr.write(`switchboard: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`switchboard: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
