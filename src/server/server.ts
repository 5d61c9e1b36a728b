/**
 * The server assembly: configuration → storage → core services → modules → listeners →
 * HTTP → commands, from the lists of parts it is given, and the graceful stop. The CLI,
 * tests and benchmarks all run the same server. Nothing in the core knows this folder.
 */
import { mkdirSync } from "node:fs";
import { type Logger, pino } from "pino";
import { type ClusterNode, checkClusterConfig, joinCluster } from "../cluster/index.js";
import { type Clock, systemClock } from "../core/clock.js";
import type { CommandDefinition } from "../core/commands.js";
import { ConfigError, type ServerConfig } from "../core/config.js";
import { installCoreHandlers } from "../core/core-handlers.js";
import { StreamError } from "../core/errors.js";
import type { ServerEvents } from "../core/events.js";
import { DiscoRegistry, StreamFeatureRegistry } from "../core/features.js";
import { HookBus } from "../core/hooks.js";
import { IqRegistry } from "../core/iq.js";
import { normalizeDomain } from "../core/jid.js";
import { LoginGuard } from "../core/login-guard.js";
import { MetricRegistry } from "../core/metrics.js";
import { type ModuleDefinition, ModuleHost, type ModuleListener } from "../core/module.js";
import { Router } from "../core/router.js";
import type { CoreServices } from "../core/services.js";
import { LocalSessionDirectory } from "../core/session-directory.js";
import { StanzaFilters } from "../core/stanza-filters.js";
import { addAppendQueueMetrics } from "../core/storage/append-metrics.js";
import { sharedSecret } from "../core/storage/shared-secret.js";
import type { Storage } from "../core/storage/types.js";
import { newStreamCounters } from "../core/stream/counters.js";
import { sessionHost } from "../core/stream/local-session.js";
import { ClientStreams } from "../core/stream/streams.js";
import type { HttpPlugin } from "../http/context.js";
import { HttpServer } from "../http/server.js";
import { StorageTiming, timedStorage } from "../http/storage-timing.js";
import { webChat } from "../http/webchat/index.js";
import { openStorage, storageOptionsFrom } from "../storage/index.js";
import { TcpClientListener } from "../transports/tcp/listener.js";
import { loadTls, SERVED_CERTIFICATES, type TlsMaterial, type TlsReload } from "../transports/tls.js";
import { websocketEndpoint } from "../transports/websocket/endpoint.js";
import { hostMeta } from "../transports/websocket/host-meta.js";

export interface StartOptions {
  clock?: Clock;
  /** Modules to load (normally the standard set from src/modules). */
  modules: ModuleDefinition<unknown>[];
  logger?: Logger;
  /**
   * The HTTP listener on `config.httpPort` (0: none) with these plugins (normally
   * `standardHttpPlugins` from src/http) and those the modules contribute. Without it no
   * HTTP listener runs (embedded uses, tests).
   */
  http?: { plugins: HttpPlugin[]; commands: readonly CommandDefinition<never>[] };
}

export interface ListeningAddresses {
  c2sPort?: number;
  c2sTlsPort?: number;
  httpPort?: number;
  /** Ports of the listeners modules run, by the names they give. */
  [name: string]: number | undefined;
}

export class SwitchboardServer {
  private stopping?: Promise<void>;
  private readonly certificateCheck?: NodeJS.Timeout;

  private constructor(
    readonly services: CoreServices,
    readonly modules: ModuleHost,
    /** Every client stream of this process, whatever its transport. */
    readonly streams: ClientStreams,
    private readonly tcp: TcpClientListener,
    private readonly moduleListeners: ModuleListener[],
    readonly addresses: ListeningAddresses,
    readonly tls: TlsMaterial | undefined,
    /** The HTTP listener, when one runs. */
    readonly http: HttpServer | undefined,
    /** This node's part in a cluster, when `cluster.url` is set. */
    readonly cluster: ClusterNode | undefined,
  ) {
    if (!tls) return;
    tls.warnOfExpiry(services.clock.now());
    // Reloaded or not, a certificate's coming end is checked hourly (and logged daily).
    const everySeconds = services.config.tls.reloadCheckSeconds || 3600;
    this.certificateCheck = setInterval(() => {
      if (services.config.tls.reloadCheckSeconds > 0) this.reloadCertificates();
      else tls.warnOfExpiry(services.clock.now());
    }, everySeconds * 1000);
    this.certificateCheck.unref();
  }

  /**
   * Reads the certificate files again and serves those that changed to new connections (open
   * ones keep theirs); then warns of any that expires soon. Run every `tls.reloadCheckSeconds`
   * and on SIGHUP.
   */
  reloadCertificates(): TlsReload | undefined {
    const reload = this.tls?.reload();
    this.tls?.warnOfExpiry(this.services.clock.now());
    return reload;
  }

  get log(): Logger {
    return this.services.log;
  }

  static async start(config: ServerConfig, opts: StartOptions): Promise<SwitchboardServer> {
    const log = opts.logger ?? pino({ level: config.logLevel, base: { domain: config.domain } });
    const clock = opts.clock ?? systemClock;
    checkClusterConfig(config);
    checkHosts(config);
    mkdirSync(config.dataDir, { recursive: true });
    const storageOptions = storageOptionsFrom(config);
    if (storageOptions.backend === "sqlite") {
      storageOptions.checkpointThread = true;
      // A command waits the default for a lock; the server's main thread must not stop as long.
      storageOptions.busyTimeoutMs = config.storage.busyTimeoutMs;
    }
    // An upgrade's migration may rebuild a table (seconds per million archived messages): say why
    // the start waits. A new database's migrations are quick and not worth a line each.
    storageOptions.onMigration = (m) => {
      if (m.upgrade)
        log.info({ version: m.version, migration: m.description }, "storage: applying a schema migration");
    };
    const opened: Storage = await openStorage(storageOptions);
    // Storage latency is measured for the metrics of the HTTP listener.
    const storageTiming = opts.http && config.httpPort > 0 ? new StorageTiming() : undefined;
    const storage = storageTiming ? timedStorage(opened, storageTiming) : opened;
    let tls: TlsMaterial | undefined;
    try {
      tls = await loadTls(config, log);
    } catch (err) {
      if (!config.allowPlaintext) {
        await storage.close();
        throw err;
      }
      log.warn({ err }, "TLS is unavailable; serving plaintext streams only");
    }
    let cluster: ClusterNode | undefined;
    try {
      cluster = await joinCluster(config, log);
    } catch (err) {
      await storage.close();
      throw err;
    }
    let saslDecoySecret: Buffer;
    try {
      saslDecoySecret = await sharedSecret(storage, "sasl-decoy", config.dataDir, clock.now());
    } catch (err) {
      await cluster?.stop();
      await storage.close();
      throw err;
    }
    const services = coreServices(config, log, clock, storage, saslDecoySecret, cluster);
    addAppendQueueMetrics(services.metrics, storage);
    // One set of certificates for every listener, modules' ones included (reloaded together).
    if (tls) {
      services.apis.set(SERVED_CERTIFICATES, tls);
      const served = tls;
      services.metrics.add({
        name: "switchboard_tls_certificate_expiry_timestamp_seconds",
        help: "When each served domain's certificate expires (Unix time); alert well before it",
        type: "gauge",
        labelNames: ["domain"],
        collect: () =>
          [...served.hosts].map(([domain, host]) => [{ domain }, host.notAfter.getTime() / 1000] as const),
      });
    }
    installCoreHandlers(services);
    const streams = new ClientStreams(
      services,
      sessionHost({
        filters: services.filters,
        sessions: services.sessions,
        fireEnded: (session, reason) => {
          const r = services.hooks.fire("session/ended", { session, reason });
          if (typeof r !== "boolean") r.catch((err) => log.error({ err }, "session/ended handler failed"));
        },
      }),
    );
    const modules = new ModuleHost(services);
    const tcp = new TcpClientListener({
      streams,
      bind: config.bind,
      c2sPort: config.c2sPort,
      c2sTlsPort: config.c2sTlsPort,
      tls,
      log,
    });
    const started: ModuleListener[] = [];
    let http: HttpServer | undefined;
    const undo = async () => {
      await http?.close().catch(() => undefined);
      for (const l of started.reverse()) await l.stop().catch(() => undefined);
      await tcp.stopAccepting();
      await modules.unloadAll();
      await cluster?.stop();
      await storage.close();
    };
    let addresses: ListeningAddresses;
    try {
      await modules.loadAll(opts.modules, config.disabledModules);
      await cluster?.start(services.router, services.metrics, () => services.counters.stanzasIn.message);
      cluster?.shareLogins(services.loginGuard);
      cluster?.onDrain(async (error) => {
        // No new connections on any transport; the listeners close once their connections are gone.
        streams.stopAccepting();
        const listening = tcp.stopAccepting();
        const count = streams.open.size;
        streams.closeAll(error, { resumable: true });
        listening.catch((err) => log.warn({ err }, "closing the listeners while draining"));
        return { streams: count };
      });
      addresses = { ...(await tcp.listen()) };
      for (const listener of modules.listeners()) {
        Object.assign(addresses, await listener.start());
        started.push(listener);
      }
      if (opts.http && config.httpPort > 0) {
        http = new HttpServer({
          services,
          streams,
          // The modules' commands, unless the list given already holds them (the CLI's full list).
          commands: [...new Set([...opts.http.commands, ...modules.list().flatMap((m) => m.commands ?? [])])],
          tls,
          ...(storageTiming ? { storageTiming } : {}),
        });
        for (const plugin of [...opts.http.plugins, ...modules.contributions("http")]) http.register(plugin);
        if (config.http.websocket) {
          // XMPP over WebSocket: one more transport handing its connections to the same streams.
          const chat = config.http.webChat.enabled ? webChat() : undefined;
          http.register(
            websocketEndpoint({
              streams,
              ...(chat ? { onConnection: chat.recognise } : {}),
            }),
          );
          http.register(hostMeta());
          if (chat) http.register(chat.plugin);
        }
        addresses.httpPort = await http.listen(config.httpPort);
      }
    } catch (err) {
      await undo();
      throw err;
    }
    const server = new SwitchboardServer(
      services,
      modules,
      streams,
      tcp,
      started,
      addresses,
      tls,
      http,
      cluster,
    );
    await services.hooks.fireAsync("server/started", {});
    return server;
  }

  /** Graceful stop: no new connections, every stream closed with system-shutdown, modules unloaded, storage flushed. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    clearInterval(this.certificateCheck);
    const { hooks, storage, log } = this.services;
    const accepting = this.tcp.stopAccepting();
    // In-flight HTTP requests finish before the modules and storage go away.
    const httpClosed = this.http?.close();
    await hooks.fireAsync("server/stopping", {});
    this.streams.closeAll(new StreamError("system-shutdown", "The server is shutting down"));
    // Sessions kept without a stream (hibernated) end too.
    for (const s of [...this.services.sessions.all()]) s.close(new StreamError("system-shutdown"));
    // Let session/ended handlers (offline bookkeeping, last activity) finish their writes.
    await new Promise((r) => setTimeout(r, 50));
    await accepting;
    for (const l of [...this.moduleListeners].reverse()) await l.stop();
    await httpClosed;
    await this.modules.unloadAll();
    // The sessions' removals from the cluster directory are written before NATS is left.
    await this.cluster?.stop();
    await storage.close();
    log.info("stopped");
  }
}

/** The virtual hosts are valid domain names, each served once, none of them the primary domain. */
function checkHosts(config: ServerConfig): void {
  const seen = new Set([config.domain]);
  for (const host of config.hosts) {
    let domain: string;
    try {
      domain = normalizeDomain(host.domain);
    } catch (err) {
      throw new ConfigError(`hosts: "${host.domain}" is not a domain name: ${(err as Error).message}`);
    }
    if (domain !== host.domain) throw new ConfigError(`hosts: write ${host.domain} as ${domain}`);
    if (seen.has(domain)) throw new ConfigError(`hosts: ${domain} is served already`);
    seen.add(domain);
  }
}

/** The core's services over the opened storage. */
function coreServices(
  config: ServerConfig,
  log: Logger,
  clock: Clock,
  storage: Storage,
  saslDecoySecret: Buffer,
  cluster?: ClusterNode,
): CoreServices {
  const hooks = new HookBus<ServerEvents>();
  const limits = config.limits;
  const router = new Router(config.domain, hooks, log);
  // The virtual hosts: served like the primary domain, their accounts keyed "local@domain".
  for (const host of config.hosts) router.addHost(host.domain);
  return {
    config,
    domain: config.domain,
    log,
    clock,
    storage,
    hooks,
    sessions: cluster?.directory ?? new LocalSessionDirectory(config.domain, limits.maxResourcesPerAccount),
    ...(cluster ? { nodes: cluster } : {}),
    router,
    iq: new IqRegistry(),
    disco: new DiscoRegistry(),
    streamFeatures: new StreamFeatureRegistry(),
    filters: new StanzaFilters(),
    metrics: new MetricRegistry(),
    apis: new Map(),
    saslDecoySecret,
    counters: newStreamCounters(),
    loginGuard: new LoginGuard({
      perAddress: limits.authFailuresPerAddress,
      perAccount: limits.authFailuresPerAccount,
      windowMs: limits.failureWindowSeconds * 1000,
      maxDelayMs: limits.authSlowdownMaxSeconds * 1000,
      trustedForMs: limits.trustedLoginAddressDays * 86_400_000,
      now: () => clock.now(),
      log,
      face: "xmpp",
    }),
  };
}
