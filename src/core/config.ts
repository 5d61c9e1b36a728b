/**
 * Server configuration: the core's settings plus the sections the server's parts add
 * (ConfigSections), filled from (lowest to highest precedence) defaults, a YAML/JSON
 * config file, SWITCHBOARD_* environment variables and command-line options. Module
 * options live under `modules.<name>` and are validated by the schema each module declares.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";

/** A TCP port; 0 turns a listener off. */
export const port = z.number().int().min(0).max(65535);

export const LimitsSchema = z
  .object({
    /** Largest top-level element accepted from a client, in bytes (RFC 6120 §13.12). */
    maxStanzaBytes: z.number().int().min(10_000).default(262_144),
    /** Deepest element nesting accepted inside a stanza. */
    maxDepth: z.number().int().min(4).default(48),
    /** Seconds a connection may take to authenticate and bind. */
    authTimeoutSeconds: z.number().positive().default(30),
    /** Seconds without any input after which an authenticated connection is closed (0: never). */
    idleTimeoutSeconds: z.number().min(0).default(900),
    /** Sustained inbound bytes per second per connection; reading pauses above it (0: unlimited). */
    bytesPerSecond: z
      .number()
      .int()
      .min(0)
      .default(256 * 1024),
    /** Burst allowance for bytesPerSecond. */
    burstBytes: z
      .number()
      .int()
      .min(0)
      .default(1024 * 1024),
    /** Open client connections in total (0: unlimited). */
    maxConnections: z.number().int().min(0).default(0),
    /** Open client connections from one IP address (0: unlimited). */
    maxConnectionsPerAddress: z.number().int().min(0).default(0),
    /** Bytes queued for a client that does not read, before its stream is closed. */
    maxSendBufferBytes: z
      .number()
      .int()
      .min(65_536)
      .default(8 * 1024 * 1024),
    /** Bound resources per account. */
    maxResourcesPerAccount: z.number().int().min(1).default(10),
    /** Wrong passwords from one address within failureWindowSeconds before the address is refused. */
    authFailuresPerAddress: z.number().int().min(1).default(10),
    /**
     * Wrong passwords for one account (from any address) within failureWindowSeconds before its
     * logins are slowed — never refused — for addresses it was not used from.
     */
    authFailuresPerAccount: z.number().int().min(1).default(5),
    failureWindowSeconds: z.number().positive().default(300),
    /** Longest wait given to a login on an account under attack (it doubles per failure from 1 s). */
    authSlowdownMaxSeconds: z.number().min(0).default(8),
    /** Days an address that logged into an account stays exempt from that account's slowdown. */
    trustedLoginAddressDays: z.number().min(0).default(30),
  })
  .prefault({});

/** A served domain besides the primary one (a virtual host), with its own certificate. */
const HostSchema = z.object({
  domain: z.string().min(1),
  /** PEM certificate chain and key; without them a self-signed pair is generated for the domain. */
  tls: z.object({ certFile: z.string().optional(), keyFile: z.string().optional() }).prefault({}),
});

export type HostConfig = z.infer<typeof HostSchema>;

export const CoreConfigSchema = z.object({
  /** The primary XMPP domain served (server-generated stanzas come from it). */
  domain: z.string().min(1).default("localhost"),
  /**
   * Further served domains (virtual hosts), each with its own accounts and certificate: a
   * list of `{ domain, tls: { certFile, keyFile } }`, or of domain names (self-signed
   * certificates), or one string of names separated by commas (SWITCHBOARD_HOSTS).
   */
  hosts: z
    .union([z.string(), z.array(z.union([z.string(), HostSchema]))])
    .default([])
    .transform((v): HostConfig[] =>
      (typeof v === "string" ? v.split(",") : v)
        .map((h) => (typeof h === "string" ? { domain: h, tls: {} } : h))
        .map((h) => ({ ...h, domain: h.domain.trim().toLowerCase() }))
        .filter((h) => h.domain !== ""),
    ),
  dataDir: z.string().default("./data"),
  /**
   * Listen addresses of the client and HTTP listeners, each on the same ports: a list, or one
   * string of addresses separated by commas (the form of --bind and SWITCHBOARD_BIND). Both
   * loopbacks by default, so that `localhost` works whether a client resolves it to 127.0.0.1
   * or ::1.
   */
  bind: z
    .union([z.string(), z.array(z.string())])
    .default(["127.0.0.1", "::1"])
    .transform((v) => (typeof v === "string" ? v.split(",") : v).map((a) => a.trim()).filter((a) => a !== ""))
    .pipe(z.array(z.string()).min(1, "bind needs at least one address")),
  /** Allows clients to authenticate without TLS (loopback tests and benchmarks only). */
  allowPlaintext: z.boolean().default(false),
  allowRegistration: z.boolean().default(false),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** PBKDF2 iteration count for new SCRAM credentials. */
  scramIterations: z.number().int().min(4096).default(10_000),
  /** SASL mechanisms offered, in preference order. */
  saslMechanisms: z
    .array(z.string())
    .default(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]),
  /** Offers XEP-0388 SASL2 beside RFC 6120 SASL (same mechanisms; no stream restart). */
  sasl2: z.boolean().default(true),
  /**
   * XEP-0386 Bind 2 inside SASL2: bind, resume and enable session features in the
   * authentication round trip. Off by default: clients that offer it then get resources of
   * the form `tag/id` instead of the one they asked for.
   */
  bind2: z.boolean().default(false),
  limits: LimitsSchema,
  /** Names of modules not to load. */
  disabledModules: z.array(z.string()).default([]),
  /** Per-module options, validated by each module's own schema. */
  modules: z.record(z.string(), z.unknown()).default({}),
});

export type CoreConfig = z.infer<typeof CoreConfigSchema>;
export type Limits = CoreConfig["limits"];

/**
 * The sections the server's parts add to the configuration (HTTP, mail, storage, TLS,
 * transports, modules' top-level keys). Each part declares its keys here by declaration
 * merging and passes their schema as a ConfigSection to loadConfig, so the core does not
 * know them.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in the parts' folders
export interface ConfigSections {}

/** The whole configuration of a server: the core's settings and every part's section. */
export type ServerConfig = CoreConfig & ConfigSections;

/** A part's top-level keys, with their schema and the environment variables that set them. */
export interface ConfigSection {
  keys: z.ZodRawShape;
  /** Keys that SWITCHBOARD_* variables set (SWITCHBOARD_HTTP_PORT → httpPort), with their type. */
  env?: Record<string, "string" | "number" | "boolean">;
  /** Values that other environment variables give (e.g. SWITCHBOARD_STORAGE_URL → storage.url). */
  environment?(env: NodeJS.ProcessEnv): Record<string, unknown>;
  /** Makes the section's relative paths in a configuration file absolute against the file's folder. */
  resolveFilePaths?(values: Record<string, unknown>, fileDir: string): void;
}

/** Environment variables that map onto top-level options (SWITCHBOARD_C2S_PORT → c2sPort). */
const CORE_ENV_KEYS: Record<string, "string" | "number" | "boolean"> = {
  domain: "string",
  hosts: "string",
  dataDir: "string",
  bind: "string",
  allowPlaintext: "boolean",
  allowRegistration: "boolean",
  logLevel: "string",
  scramIterations: "number",
};

function envName(key: string): string {
  return "SWITCHBOARD_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

function parseScalar(raw: string, kind: "string" | "number" | "boolean"): unknown {
  if (kind === "number") return Number(raw);
  if (kind === "boolean") return /^(1|true|yes|on)$/i.test(raw);
  return raw;
}

export function fromEnvironment(
  env: NodeJS.ProcessEnv,
  keys: Record<string, "string" | "number" | "boolean"> = CORE_ENV_KEYS,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, kind] of Object.entries(keys)) {
    const raw = env[envName(key)];
    if (raw !== undefined && raw !== "") out[key] = parseScalar(raw, kind);
  }
  return out;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const parsed: unknown = YAML.parse(text);
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must hold a mapping of options`);
  }
  return parsed as Record<string, unknown>;
}

function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const prev = out[k];
    if (isPlainObject(prev) && isPlainObject(v)) out[k] = mergeDeep(prev, v);
    else out[k] = v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Loads the configuration. `overrides` are command-line values (undefined = not given).
 * Relative paths in the file are resolved against the file's directory.
 */
export function loadConfig(opts: {
  file?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: Record<string, unknown>;
  /** The parts' sections (the server's are in src/server/config.ts). */
  sections: readonly ConfigSection[];
}): ServerConfig {
  let fileValues: Record<string, unknown> = {};
  if (opts.file) {
    fileValues = readConfigFile(opts.file);
    const base = path.dirname(path.resolve(opts.file));
    if (typeof fileValues.dataDir === "string") fileValues.dataDir = path.resolve(base, fileValues.dataDir);
    if (Array.isArray(fileValues.hosts)) {
      for (const host of fileValues.hosts) {
        const tls = isPlainObject(host) && isPlainObject(host.tls) ? host.tls : undefined;
        for (const k of ["certFile", "keyFile"])
          if (tls && typeof tls[k] === "string") tls[k] = path.resolve(base, tls[k]);
      }
    }
    for (const sec of opts.sections) sec.resolveFilePaths?.(fileValues, base);
  }
  const envKeys = Object.assign({}, CORE_ENV_KEYS, ...opts.sections.map((sec) => sec.env ?? {}));
  const env = opts.env ?? {};
  const fromEnv = Object.assign(
    fromEnvironment(env, envKeys),
    ...opts.sections.map((sec) => sec.environment?.(env) ?? {}),
  );
  const merged = mergeDeep(mergeDeep(fileValues, fromEnv), opts.overrides ?? {});
  const schema = CoreConfigSchema.extend(Object.assign({}, ...opts.sections.map((sec) => sec.keys)));
  const result = schema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigError("invalid configuration:\n" + lines.join("\n"));
  }
  const config = result.data as unknown as ServerConfig;
  config.dataDir = path.resolve(config.dataDir);
  return config;
}
