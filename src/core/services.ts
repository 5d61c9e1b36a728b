/**
 * The core's services: what the server assembly builds once and the core's parts share.
 * Modules never see this object: they get a ModuleContext (module.ts), which hands out
 * only what a module may use.
 */
import type { ServerConfig } from "./config.js";
import type { DiscoRegistry } from "./features.js";
import type { IqRegistry } from "./iq.js";
import type { MetricRegistry } from "./metrics.js";
import type { NodeBus } from "./nodes.js";
import type { StreamServices } from "./stream/services.js";

export interface CoreServices extends StreamServices {
  readonly config: ServerConfig;
  readonly iq: IqRegistry;
  readonly disco: DiscoRegistry;
  /** Metrics declared by the core's parts and the modules, served by whichever face exports them. */
  readonly metrics: MetricRegistry;
  /** Other loaded modules' public APIs, by module name (see ModuleContext.provide). */
  readonly apis: Map<string, unknown>;
  /** The other nodes of the cluster this server is a node of; absent on a single server. */
  readonly nodes?: NodeBus;
}
