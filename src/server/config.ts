/**
 * The configuration of a standard server: the core's settings and the sections of its
 * parts (transports, certificates, storage, HTTP, mail, and the modules' own keys).
 */
import { clusterConfigSection } from "../cluster/index.js";
import { type ConfigSection, loadConfig, type ServerConfig } from "../core/config.js";
import type { ModuleDefinition } from "../core/module.js";
import { maxPasswordLength } from "../core/password-length.js";
import { httpConfigSection } from "../http/config.js";
import { mailConfigSection } from "../programme/config.js";
import { storageConfigSection } from "../storage/config.js";
import { tcpConfigSection } from "../transports/tcp/config.js";
import { tlsConfigSection } from "../transports/tls-config.js";
import { standardModules } from "./parts.js";

/** The sections of the server's parts and of `modules`. */
export function configSections(modules: readonly ModuleDefinition<unknown>[]): ConfigSection[] {
  return [
    tcpConfigSection,
    tlsConfigSection,
    storageConfigSection,
    clusterConfigSection,
    httpConfigSection,
    mailConfigSection,
    ...modules.flatMap((m) => (m.config ? [m.config] : [])),
  ];
}

/** Loads the configuration of a server running the standard modules (see core/config.ts for the sources). */
export function loadServerConfig(opts: {
  file?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: Record<string, unknown>;
}): ServerConfig {
  const config = loadConfig({ ...opts, sections: configSections(standardModules) });
  // Read by the admin commands also where the register module, which declares it, is off.
  maxPasswordLength(config);
  return config;
}
