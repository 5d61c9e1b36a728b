/**
 * Composition of the server: configuration, logging, storage, the core
 * services, the modules and the listeners. Start and stop live here, so the
 * CLI, tests and benchmarks all run the same server.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Logger, pino } from "pino";
import { C2SListener } from "../c2s/listener.js";
import type { C2SServices } from "../c2s/services.js";
import { loadTls, type TlsMaterial } from "../c2s/tls.js";
import { openStorage } from "../storage/index.js";
import { type Clock, systemClock } from "./clock.js";
import type { ServerConfig } from "./config.js";
import { installCoreHandlers } from "./core-handlers.js";
import { StreamError } from "./errors.js";
import type { ServerEvents } from "./events.js";
import { DiscoRegistry, StreamFeatureRegistry } from "./features.js";
import { HookBus } from "./hooks.js";
import { IqRegistry } from "./iq.js";
import { type ModuleDefinition, ModuleHost } from "./module.js";
import { FailureLimiter } from "./rate-limit.js";
import { Router } from "./router.js";
import { SessionManager } from "./sessions.js";
import type { Storage } from "./storage/types.js";

export interface StartOptions {
  clock?: Clock;
  /** Modules to load (normally the standard set from src/modules). */
  modules: ModuleDefinition<unknown>[];
  logger?: Logger;
}

export interface ListeningAddresses {
  c2sPort?: number;
  c2sTlsPort?: number;
}

export class SwitchboardServer {
  private stopping?: Promise<void>;

  private constructor(
    readonly services: C2SServices,
    readonly modules: ModuleHost,
    readonly c2s: C2SListener,
    readonly addresses: ListeningAddresses,
    readonly tls: TlsMaterial | undefined,
  ) {}

  get log(): Logger {
    return this.services.log;
  }

  static async start(config: ServerConfig, opts: StartOptions): Promise<SwitchboardServer> {
    const log = opts.logger ?? pino({ level: config.logLevel, base: { domain: config.domain } });
    const clock = opts.clock ?? systemClock;
    mkdirSync(config.dataDir, { recursive: true });
    const storage: Storage = await openStorage({
      backend: config.storage.backend,
      path: path.resolve(config.dataDir, config.storage.sqlitePath),
    });
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
      authFailures: {
        byAddress: new FailureLimiter({
          max: limits.authFailuresPerAddress,
          windowMs: window,
          maxKeys: 100_000,
          now: () => clock.now(),
        }),
        byAccount: new FailureLimiter({
          max: limits.authFailuresPerAccount,
          windowMs: window,
          maxKeys: 100_000,
          now: () => clock.now(),
        }),
      },
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
    const server = new SwitchboardServer(services, modules, c2s, addresses, tls);
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
    await hooks.fireAsync("server/stopping", {});
    for (const conn of [...this.c2s.connections]) {
      conn.close(new StreamError("system-shutdown", "The server is shutting down"));
    }
    // Let session/ended handlers (offline bookkeeping, last activity) finish their writes.
    await new Promise((r) => setTimeout(r, 50));
    await accepting;
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
