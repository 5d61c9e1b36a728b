/**
 * The module host. A module is data: a name, the XEPs it implements, a typed
 * options schema, and a setup function that registers hooks, IQ handlers,
 * disco and stream features through its context. Every registration is
 * recorded so unloading a module removes all of it (the way ejabberd's
 * gen_mod and Prosody's module API do).
 */
import type { Logger } from "pino";
import type { z } from "zod";
import type { Clock } from "./clock.js";
import type { ServerConfig } from "./config.js";
import type { ServerEvents } from "./events.js";
import type {
  DiscoIdentity,
  DiscoRegistry,
  DiscoTarget,
  StreamFeatureProvider,
  StreamFeatureRegistry,
} from "./features.js";
import type { HookBus, HookHandler } from "./hooks.js";
import type { IqHandler, IqRegistry, IqSpec } from "./iq.js";
import type { Router } from "./router.js";
import type { SessionManager } from "./sessions.js";
import type { Storage } from "./storage/types.js";

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
  setup(ctx: ModuleContext<Options>): void | Promise<void>;
}

/** Identity helper so a module file gets its options type inferred from its schema. */
export function defineModule<Options = Record<string, never>>(
  def: ModuleDefinition<Options>,
): ModuleDefinition<Options> {
  return def;
}

/** The services of the server that modules use. */
export interface ServerServices {
  readonly config: ServerConfig;
  readonly domain: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly storage: Storage;
  readonly hooks: HookBus<ServerEvents>;
  readonly sessions: SessionManager;
  readonly router: Router;
  readonly iq: IqRegistry;
  readonly disco: DiscoRegistry;
  readonly streamFeatures: StreamFeatureRegistry;
  /** Other loaded modules' public APIs, by module name (see ModuleContext.provide). */
  readonly apis: Map<string, unknown>;
}

export interface ModuleContext<Options> extends ServerServices {
  readonly name: string;
  readonly options: Options;
  hook<K extends keyof ServerEvents>(
    event: K,
    handler: HookHandler<ServerEvents[K]>,
    priority?: number,
  ): void;
  handleIq(spec: IqSpec, handler: IqHandler): void;
  addFeature(xmlns: string, target?: DiscoTarget): void;
  addIdentity(identity: DiscoIdentity, target?: DiscoTarget): void;
  addStreamFeature(provider: StreamFeatureProvider): void;
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

  constructor(private readonly services: ServerServices) {}

  isLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  list(): ModuleDefinition<unknown>[] {
    return [...this.loaded.values()].map((m) => m.def);
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
    const s = this.services;
    const ctx: ModuleContext<O> = {
      ...s,
      name: def.name,
      options,
      log: s.log.child({ module: def.name }),
      hook: (event, handler, priority) => cleanups.push(s.hooks.on(event, handler, priority)),
      handleIq: (spec, handler) => cleanups.push(s.iq.register(spec, handler)),
      addFeature: (xmlns, target) => cleanups.push(s.disco.addFeature(xmlns, target)),
      addIdentity: (identity, target) => cleanups.push(s.disco.addIdentity(identity, target)),
      addStreamFeature: (provider) => cleanups.push(s.streamFeatures.add(provider)),
      provide: (api) => {
        s.apis.set(def.name, api);
        cleanups.push(() => {
          s.apis.delete(def.name);
        });
      },
      api: <T>(name: string) => s.apis.get(name) as T | undefined,
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
    this.loaded.set(def.name, { def: def as ModuleDefinition<unknown>, cleanups });
    try {
      await def.setup(ctx);
    } catch (err) {
      await this.unload(def.name);
      throw new ModuleLoadError(`module ${def.name} failed to load: ${(err as Error).message}`);
    }
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
