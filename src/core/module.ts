/**
 * The module host. A module is data: a name, the XEPs it implements, a typed options
 * schema, the admin commands it adds, and a setup function that registers what it does
 * through its context: hooks, IQ handlers, disco and stream features, stanza filters,
 * routes, metrics, typed per-session state, and contributions to the server's other faces
 * (HTTP routes, listeners). Every registration is recorded so unloading a module removes
 * all of it (the way ejabberd's gen_mod and Prosody's module API do).
 *
 * The context is the whole of what a module may use: it does not hand out the server's
 * service container, so a module cannot reach around it.
 */
import type { Logger } from "pino";
import type { z } from "zod";
import type { Clock } from "./clock.js";
import type { CommandDefinition } from "./commands.js";
import type { ConfigSection, ServerConfig } from "./config.js";
import type { ServerEvents } from "./events.js";
import type { DiscoIdentity, DiscoTarget, StreamFeatureProvider } from "./features.js";
import type { HookHandler } from "./hooks.js";
import type { IqHandler, IqSpec } from "./iq.js";
import { accountJid, accountKey, type Jid } from "./jid.js";
import type { MetricDefinition } from "./metrics.js";
import type { NodeBus } from "./nodes.js";
import type { Route, Router } from "./router.js";
import type { CoreServices } from "./services.js";
import type { ClientSession } from "./session.js";
import type { SessionDirectory } from "./session-directory.js";
import type { FilterDirection, StanzaFilter } from "./stanza-filters.js";
import type { Storage } from "./storage/types.js";
import { type SessionControl, sessionControl } from "./stream/local-session.js";
import type { XmlElement } from "./xml/element.js";

export interface XepSupport {
  /** e.g. "0199" */
  xep: string;
  version?: string;
  status?: "complete" | "partial";
  notes?: string;
}

export interface ModuleDefinition<Options = Record<string, never>> {
  name: string;
  description: string;
  xeps?: XepSupport[];
  /** Options from `modules.<name>` in the configuration; defaults come from the schema. */
  options?: z.ZodType<Options>;
  /** Modules this one needs loaded first. */
  dependencies?: string[];
  /**
   * Admin commands this module adds: offered by the CLI, the HTTP API and the console like
   * every command (they run on storage, also when no server runs; see core/commands.ts).
   */
  commands?: readonly CommandDefinition<never>[];
  /** Top-level configuration keys the module adds beside `modules.<name>` (e.g. a port). */
  config?: ConfigSection;
  setup(ctx: ModuleContext<Options>): void | Promise<void>;
}

/** Identity helper so a module file gets its options type inferred from its schema. */
export function defineModule<Options = Record<string, never>>(
  def: ModuleDefinition<Options>,
): ModuleDefinition<Options> {
  return def;
}

/**
 * What modules contribute to faces outside the core, by kind. The layers that serve them
 * add their kinds by augmenting this interface (the HTTP layer adds `http`), so the core
 * knows none of them.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in the faces' folders
export interface ModuleContributions {}

/** A listener a module runs (server-to-server, components…), started after every module loaded. */
export interface ModuleListener {
  readonly name: string;
  /** Starts listening; returns the ports bound, by name (e.g. { s2sPort: 5269 }). */
  start(): Promise<Record<string, number>>;
  /** Stops accepting and closes what it holds. */
  stop(): Promise<void>;
}

/** Typed per-session state of one module (kept on the session, gone with it). */
export interface SessionState<T> {
  get(session: ClientSession): T | undefined;
  set(session: ClientSession, value: T): void;
  delete(session: ClientSession): void;
}

/** What modules may read of the server's advertised features (the disco module answers with it). */
export interface AdvertisedFeatures {
  features(target: DiscoTarget): string[];
  identities(target: DiscoTarget): DiscoIdentity[];
  /** XEP-0128 extension forms of the host. */
  readonly extensions: readonly XmlElement[];
}

export interface ModuleContext<Options> {
  readonly name: string;
  readonly options: Options;
  /** The server's configuration (read it; a module's own options are in `options`). */
  readonly config: ServerConfig;
  /** The primary served domain. */
  readonly domain: string;
  /**
   * The storage key of a local account (any served domain): what storage, the session
   * directory and commands name it by (core/jid.ts accountKey()).
   */
  accountKey(account: Jid): string;
  /** The bare JID of the account an account key names. */
  accountJid(key: string): Jid;
  readonly log: Logger;
  readonly clock: Clock;
  readonly storage: Storage;
  /** Bound sessions: who is online where, and the delivery targets of an account. */
  readonly sessions: SessionDirectory;
  /** Delivery of stanzas (locally, to services and other domains) and server-sent IQs. */
  readonly router: Router;
  readonly advertised: AdvertisedFeatures;
  /** Keeping sessions whose stream was lost and resuming them on another stream (stream management). */
  readonly sessionControl: SessionControl;
  /** The cluster's other nodes (request and answer by kind); undefined on a single server. */
  readonly nodes: NodeBus | undefined;

  hook<K extends keyof ServerEvents>(
    event: K,
    handler: HookHandler<ServerEvents[K]>,
    priority?: number,
  ): void;
  /** Fires an event (a module's own ones too: see events.ts); true when a handler claimed it. */
  fire<K extends keyof ServerEvents>(event: K, payload: ServerEvents[K]): Promise<boolean>;
  handleIq(spec: IqSpec, handler: IqHandler): void;
  addFeature(xmlns: string, target?: DiscoTarget): void;
  addIdentity(identity: DiscoIdentity, target?: DiscoTarget): void;
  /** An extension form (XEP-0128) in the host's disco#info, e.g. contact addresses. */
  addDiscoExtension(form: XmlElement): void;
  addStreamFeature(provider: StreamFeatureProvider): void;
  /** A filter on every client session's stanzas (stanza-filters.ts); higher priority runs first. */
  filter(direction: FilterDirection, filter: StanzaFilter, priority?: number): void;
  /** Routes a domain (a service on a subdomain, a component, a remote domain) to `route`. */
  addRoute(domain: string, route: Route): void;
  /** This module's typed state on each session. */
  sessionState<T>(): SessionState<T>;
  metric(def: MetricDefinition): void;
  /** A contribution to another face of the server (e.g. `contribute("http", plugin)`). */
  contribute<K extends keyof ModuleContributions>(kind: K, value: ModuleContributions[K]): void;
  /** A listener started with the server's listeners. */
  listen(listener: ModuleListener): void;
  /** Publishes an API object other modules can fetch with `api(name)`. */
  provide<T>(api: T): void;
  api<T>(moduleName: string): T | undefined;
  setInterval(fn: () => void, ms: number): void;
  setTimeout(fn: () => void, ms: number): void;
  /** Runs at unload/shutdown, in reverse registration order. */
  onUnload(fn: () => void | Promise<void>): void;
}

export class ModuleLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModuleLoadError";
  }
}

interface LoadedModule {
  def: ModuleDefinition<unknown>;
  cleanups: (() => void | Promise<void>)[];
}

export class ModuleHost {
  private readonly loaded = new Map<string, LoadedModule>();
  private readonly contributed: { module: string; kind: string; value: unknown }[] = [];
  private readonly listenerList: { module: string; listener: ModuleListener }[] = [];

  constructor(private readonly services: CoreServices) {}

  isLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  list(): ModuleDefinition<unknown>[] {
    return [...this.loaded.values()].map((m) => m.def);
  }

  /** What loaded modules contributed to one face, in load order. */
  contributions<K extends keyof ModuleContributions>(kind: K): ModuleContributions[K][] {
    return this.contributed.filter((c) => c.kind === kind).map((c) => c.value as ModuleContributions[K]);
  }

  /** The listeners loaded modules run. */
  listeners(): ModuleListener[] {
    return this.listenerList.map((l) => l.listener);
  }

  /** Loads modules in dependency order, skipping the disabled ones. */
  async loadAll(defs: ModuleDefinition<unknown>[], disabled: string[] = []): Promise<void> {
    const byName = new Map(defs.map((d) => [d.name, d]));
    const visiting = new Set<string>();
    const visit = async (def: ModuleDefinition<unknown>): Promise<void> => {
      if (this.loaded.has(def.name) || disabled.includes(def.name)) return;
      if (visiting.has(def.name)) throw new ModuleLoadError(`dependency cycle through module ${def.name}`);
      visiting.add(def.name);
      for (const dep of def.dependencies ?? []) {
        const d = byName.get(dep);
        if (!d) throw new ModuleLoadError(`module ${def.name} needs module ${dep}, which is not available`);
        if (disabled.includes(dep))
          throw new ModuleLoadError(`module ${def.name} needs module ${dep}, which is disabled`);
        await visit(d);
      }
      await this.load(def);
      visiting.delete(def.name);
    };
    for (const def of defs) await visit(def);
  }

  async load<O>(def: ModuleDefinition<O>): Promise<void> {
    if (this.loaded.has(def.name)) throw new ModuleLoadError(`module ${def.name} is already loaded`);
    const raw = this.services.config.modules[def.name] ?? {};
    let options = raw as O;
    if (def.options) {
      const parsed = def.options.safeParse(raw);
      if (!parsed.success) {
        const msg = parsed.error.issues
          .map((i) => `modules.${def.name}.${i.path.join(".")}: ${i.message}`)
          .join("; ");
        throw new ModuleLoadError(`invalid options: ${msg}`);
      }
      options = parsed.data;
    }
    const cleanups: (() => void | Promise<void>)[] = [];
    const ctx = this.contextFor(def.name, options, cleanups);
    this.loaded.set(def.name, { def: def as ModuleDefinition<unknown>, cleanups });
    try {
      await def.setup(ctx);
    } catch (err) {
      await this.unload(def.name);
      throw new ModuleLoadError(`module ${def.name} failed to load: ${(err as Error).message}`);
    }
  }

  private contextFor<O>(
    name: string,
    options: O,
    cleanups: (() => void | Promise<void>)[],
  ): ModuleContext<O> {
    const s = this.services;
    const stateKey = Symbol(name);
    const contributed = this.contributed;
    const listeners = this.listenerList;
    const remove =
      <T>(list: T[], item: T) =>
      () => {
        const i = list.indexOf(item);
        if (i >= 0) list.splice(i, 1);
      };
    return {
      name,
      options,
      config: s.config,
      domain: s.domain,
      accountKey: (account) => accountKey(account.local, account.domain, s.domain),
      accountJid: (key) => accountJid(key, s.domain),
      log: s.log.child({ module: name }),
      clock: s.clock,
      storage: s.storage,
      sessions: s.sessions,
      router: s.router,
      sessionControl,
      nodes: s.nodes,
      advertised: {
        features: (target) => s.disco.getFeatures(target),
        identities: (target) => s.disco.getIdentities(target),
        extensions: s.disco.extensions,
      },
      hook: (event, handler, priority) => cleanups.push(s.hooks.on(event, handler, priority)),
      fire: (event, payload) => s.hooks.fireAsync(event, payload),
      handleIq: (spec, handler) => cleanups.push(s.iq.register(spec, handler)),
      addFeature: (xmlns, target) => cleanups.push(s.disco.addFeature(xmlns, target)),
      addIdentity: (identity, target) => cleanups.push(s.disco.addIdentity(identity, target)),
      addDiscoExtension: (form) => cleanups.push(s.disco.addExtension(form)),
      addStreamFeature: (provider) => cleanups.push(s.streamFeatures.add(provider)),
      filter: (direction, filter, priority) => cleanups.push(s.filters.add(direction, filter, priority)),
      addRoute: (domain, route) => cleanups.push(s.router.addRoute(domain, route)),
      sessionState: <T>(): SessionState<T> => ({
        get: (session) => session.data.get(stateKey) as T | undefined,
        set: (session, value) => {
          session.data.set(stateKey, value);
        },
        delete: (session) => {
          session.data.delete(stateKey);
        },
      }),
      metric: (def) => cleanups.push(s.metrics.add(def)),
      contribute: (kind, value) => {
        const entry = { module: name, kind: kind as string, value: value as unknown };
        contributed.push(entry);
        cleanups.push(remove(contributed, entry));
      },
      listen: (listener) => {
        const entry = { module: name, listener };
        listeners.push(entry);
        cleanups.push(remove(listeners, entry));
      },
      provide: (api) => {
        s.apis.set(name, api);
        cleanups.push(() => {
          s.apis.delete(name);
        });
      },
      api: <T>(other: string) => s.apis.get(other) as T | undefined,
      setInterval: (fn, ms) => {
        const t = setInterval(fn, ms);
        t.unref();
        cleanups.push(() => clearInterval(t));
      },
      setTimeout: (fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        cleanups.push(() => clearTimeout(t));
      },
      onUnload: (fn) => cleanups.push(fn),
    };
  }

  async unload(name: string): Promise<void> {
    const m = this.loaded.get(name);
    if (!m) return;
    this.loaded.delete(name);
    for (const fn of m.cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        this.services.log.error({ err, module: name }, "module cleanup failed");
      }
    }
  }

  async unloadAll(): Promise<void> {
    for (const name of [...this.loaded.keys()].reverse()) await this.unload(name);
  }
}
