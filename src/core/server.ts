/**
 * Composition of the server: configuration, logging, storage, the core
 * services, the modules and the listeners. Start and stop live here, so the
 * CLI, tests and benchmarks all run the same server.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Logger, pino } from "pino";
import { newC2SCounters } from "../c2s/counters.js";
import { C2SListener } from "../c2s/listener.js";
import type { C2SServices } from "../c2s/services.js";
import { loadTls, type TlsMaterial } from "../c2s/tls.js";
import { allCommands } from "../commands/index.js";
import type { HttpPlugin } from "../http/context.js";
import { HttpServer } from "../http/server.js";
import { StorageTiming, timedStorage } from "../http/storage-timing.js";
import { openStorage, storageOptionsFrom } from "../storage/index.js";
import { type Clock, systemClock } from "./clock.js";
import type { ServerConfig } from "./config.js";
import { installCoreHandlers } from "./core-handlers.js";
import { StreamError } from "./errors.js";
import type { ServerEvents } from "./events.js";
import { DiscoRegistry, StreamFeatureRegistry } from "./features.js";
import { HookBus } from "./hooks.js";
import { IqRegistry } from "./iq.js";
import { LoginGuard } from "./login-guard.js";
import { type ModuleDefinition, ModuleHost } from "./module.js";
import { Router } from "./router.js";
import { SessionManager } from "./sessions.js";
import type { Storage } from "./storage/types.js";

export interface StartOptions {
  clock?: Clock;
  /** Modules to load (normally the standard set from src/modules). */
  modules: ModuleDefinition<unknown>[];
  logger?: Logger;
  /**
   * The HTTP listener on `config.httpPort` (0: none) with these plugins (normally
   * `standardHttpPlugins` from src/http). Without it no HTTP listener runs (embedded uses, tests).
   */
  http?: { plugins: HttpPlugin[] };
}

export interface ListeningAddresses {
  c2sPort?: number;
  c2sTlsPort?: number;
  httpPort?: number;
}

export class SwitchboardServer {
  private stopping?: Promise<void>;

  private constructor(
    readonly services: C2SServices,
    readonly modules: ModuleHost,
    readonly c2s: C2SListener,
    readonly addresses: ListeningAddresses,
    readonly tls: TlsMaterial | undefined,
    /** The HTTP listener, when one runs. */
    readonly http: HttpServer | undefined,
  ) {}

  get log(): Logger {
    return this.services.log;
  }

  static async start(config: ServerConfig, opts: StartOptions): Promise<SwitchboardServer> {
    const log = opts.logger ?? pino({ level: config.logLevel, base: { domain: config.domain } });
    const clock = opts.clock ?? systemClock;
    mkdirSync(config.dataDir, { recursive: true });
    const opened: Storage = await openStorage(storageOptionsFrom(config));
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
    const hooks = new HookBus<ServerEvents>();
    const limits = config.limits;
    const window = limits.failureWindowSeconds * 1000;
    const services: C2SServices = {
      config,
      domain: config.domain,
      log,
      clock,
      storage,
      hooks,
      sessions: new SessionManager(config.domain, limits.maxResourcesPerAccount),
      router: new Router(config.domain, hooks, log),
      iq: new IqRegistry(),
      disco: new DiscoRegistry(),
      streamFeatures: new StreamFeatureRegistry(),
      apis: new Map(),
      tls,
      saslDecoySecret: loadOrCreateSecret(path.join(config.dataDir, "secrets", "sasl-decoy")),
      counters: newC2SCounters(),
      loginGuard: new LoginGuard({
        perAddress: limits.authFailuresPerAddress,
        perAccount: limits.authFailuresPerAccount,
        windowMs: window,
        maxDelayMs: limits.authSlowdownMaxSeconds * 1000,
        trustedForMs: limits.trustedLoginAddressDays * 86_400_000,
        now: () => clock.now(),
        log,
        face: "xmpp",
      }),
    };
    installCoreHandlers(services);
    const modules = new ModuleHost(services);
    try {
      await modules.loadAll(opts.modules, config.disabledModules);
    } catch (err) {
      await modules.unloadAll();
      await storage.close();
      throw err;
    }
    const c2s = new C2SListener(services);
    let addresses: ListeningAddresses;
    try {
      addresses = await c2s.listen();
    } catch (err) {
      await c2s.stopAccepting();
      await modules.unloadAll();
      await storage.close();
      throw err;
    }
    let http: HttpServer | undefined;
    if (opts.http && config.httpPort > 0) {
      try {
        http = new HttpServer({
          services,
          connections: () => c2s.connections,
          commands: allCommands,
          tls,
          ...(storageTiming ? { storageTiming } : {}),
        });
        for (const plugin of opts.http.plugins) http.register(plugin);
        addresses.httpPort = await http.listen(config.httpPort);
      } catch (err) {
        await http?.close().catch(() => undefined);
        await c2s.stopAccepting();
        await modules.unloadAll();
        await storage.close();
        throw err;
      }
    }
    const server = new SwitchboardServer(services, modules, c2s, addresses, tls, http);
    await hooks.fireAsync("server/started", {});
    return server;
  }

  /** Graceful stop: no new connections, every stream closed with system-shutdown, modules unloaded, storage flushed. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const { hooks, storage, log } = this.services;
    const accepting = this.c2s.stopAccepting();
    // In-flight HTTP requests finish before the modules and storage go away.
    const httpClosed = this.http?.close();
    await hooks.fireAsync("server/stopping", {});
    for (const conn of [...this.c2s.connections]) {
      conn.close(new StreamError("system-shutdown", "The server is shutting down"));
    }
    // Let session/ended handlers (offline bookkeeping, last activity) finish their writes.
    await new Promise((r) => setTimeout(r, 50));
    await accepting;
    await httpClosed;
    await this.modules.unloadAll();
    await storage.close();
    log.info("stopped");
  }
}

/** A random secret created once and kept in the data directory (mode 0600). */
function loadOrCreateSecret(file: string): Buffer {
  if (existsSync(file)) return readFileSync(file);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}
