/**
 * Server configuration: one schema, filled from (lowest to highest precedence)
 * defaults, a YAML/JSON config file, SWITCHBOARD_* environment variables and
 * command-line options. Module options live under `modules.<name>` and are
 * validated by the schema each module declares.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";

const port = z.number().int().min(0).max(65535);

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

/** Outgoing mail of the licensing programme (portal accounts, applications, notices). */
export const MailSchema = z
  .object({
    /** The SMTP server that relays outgoing mail; without a host, mails wait in the outbox. */
    smtp: z
      .object({
        host: z.string().min(1).optional(),
        port: port.default(587),
        /** Implicit TLS (port 465); otherwise STARTTLS is used when the server offers it. */
        secure: z.boolean().default(false),
        /** Refuse to send unless the connection is upgraded with STARTTLS. */
        requireTls: z.boolean().default(false),
        /** Check the SMTP server's certificate (turn off only for a relay with a self-signed one). */
        rejectUnauthorized: z.boolean().default(true),
        user: z.string().optional(),
        password: z.string().optional(),
      })
      .prefault({}),
    /** Sender of every mail, e.g. "Example Network <licensing@example.org>" (default: licensing@<domain>). */
    from: z.string().min(3).optional(),
    retry: z
      .object({
        /** Wait after the first failed attempt; it doubles after each further failure. */
        initialDelaySeconds: z.number().positive().default(30),
        /** The longest wait between two attempts. */
        maxDelaySeconds: z.number().positive().default(3600),
      })
      .prefault({}),
    /** How often the outbox is checked for mails that are due. */
    pollIntervalSeconds: z.number().positive().default(5),
    /** Sent and bounced mails are deleted from the outbox after this many days. */
    keepDays: z.number().int().min(1).default(90),
  })
  .prefault({});

export const HttpSchema = z
  .object({
    /** HTTPS: "auto" when tls.certFile/keyFile are configured, "on" also with the self-signed certificate, "off" never. */
    tls: z.enum(["auto", "on", "off"]).default("auto"),
    /** The base URL people reach the listener at (links in mails); default from the bind address or domain and port. */
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Behind a reverse proxy: take the client address and scheme from X-Forwarded-* headers. */
    trustProxy: z.boolean().default(false),
    /** A browser session ends after this many minutes without a request… */
    sessionIdleMinutes: z.number().int().min(1).default(120),
    /** …or this many hours after login, whichever comes first. */
    sessionMaxHours: z.number().min(1).default(24),
    metrics: z
      .object({
        /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
        token: z.string().min(16).optional(),
        /** Without a token, serve /metrics to every address instead of loopback only. */
        public: z.boolean().default(false),
      })
      .prefault({}),
  })
  .prefault({});

export type StorageBackend = "sqlite" | "postgres";

/** The backend a storage URL names: `sqlite:PATH`, `postgres://…` or `postgresql://…`. */
export function storageBackendOf(url: string): StorageBackend | undefined {
  if (url.startsWith("sqlite:")) return "sqlite";
  if (/^postgres(ql)?:\/\//.test(url)) return "postgres";
  return undefined;
}

export const StorageSchema = z
  .object({
    /** sqlite or postgres; when absent, the one `url` names (sqlite without a url). */
    backend: z.enum(["sqlite", "postgres"]).optional(),
    /** `sqlite:PATH` or `postgres://user:password@host:port/database?…`. */
    url: z.string().min(1).optional(),
    /** SQLite database file, relative to dataDir, when no url is given. */
    sqlitePath: z.string().default("switchboard.sqlite"),
    /** PostgreSQL: connections in the pool. */
    poolSize: z.number().int().min(1).max(1000).default(10),
  })
  .prefault({})
  .superRefine((s, ctx) => {
    const named = s.url === undefined ? undefined : storageBackendOf(s.url);
    if (s.url !== undefined && named === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["url"],
        message: "expected sqlite:PATH or postgres://user:password@host:port/database",
      });
    } else if (s.backend !== undefined && named !== undefined && s.backend !== named) {
      ctx.addIssue({ code: "custom", path: ["backend"], message: `is ${s.backend} but the url is ${named}` });
    } else if (s.backend === "postgres" && s.url === undefined) {
      ctx.addIssue({ code: "custom", path: ["url"], message: "postgres needs a url (postgres://…)" });
    }
  })
  .transform((s) => ({
    ...s,
    backend: (s.backend ??
      (s.url === undefined ? undefined : storageBackendOf(s.url)) ??
      "sqlite") as StorageBackend,
  }));

export const ServerConfigSchema = z.object({
  /** The XMPP domain served (the domainpart of every local JID). */
  domain: z.string().min(1).default("localhost"),
  dataDir: z.string().default("./data"),
  /** Listen address for every listener. */
  bind: z.string().default("127.0.0.1"),
  c2sPort: port.default(5222),
  c2sTlsPort: port.default(5223),
  /** The HTTP listener (admin API, metrics, portal and console); 0 disables it. */
  httpPort: port.default(5280),
  /** Allows clients to authenticate without TLS (loopback tests and benchmarks only). */
  allowPlaintext: z.boolean().default(false),
  allowRegistration: z.boolean().default(false),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  tls: z
    .object({
      /** PEM certificate chain and key files; when absent a self-signed pair is generated in dataDir/tls. */
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
    })
    .prefault({}),
  http: HttpSchema,
  storage: StorageSchema,
  /** PBKDF2 iteration count for new SCRAM credentials. */
  scramIterations: z.number().int().min(4096).default(10_000),
  /** SASL mechanisms offered, in preference order. */
  saslMechanisms: z
    .array(z.string())
    .default(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]),
  /** Offers XEP-0388 SASL2 beside RFC 6120 SASL (same mechanisms; no stream restart). */
  sasl2: z.boolean().default(true),
  limits: LimitsSchema,
  mail: MailSchema,
  /** Names of modules not to load. */
  disabledModules: z.array(z.string()).default([]),
  /** Per-module options, validated by each module's own schema. */
  modules: z.record(z.string(), z.unknown()).default({}),
});

export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type Limits = ServerConfig["limits"];

/** Environment variables that map onto top-level options (SWITCHBOARD_C2S_PORT → c2sPort). */
const ENV_KEYS: Record<string, "string" | "number" | "boolean"> = {
  domain: "string",
  dataDir: "string",
  bind: "string",
  c2sPort: "number",
  c2sTlsPort: "number",
  httpPort: "number",
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

export function fromEnvironment(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, kind] of Object.entries(ENV_KEYS)) {
    const raw = env[envName(key)];
    if (raw !== undefined && raw !== "") out[key] = parseScalar(raw, kind);
  }
  const storageUrl = env.SWITCHBOARD_STORAGE_URL;
  if (storageUrl !== undefined && storageUrl !== "") out.storage = storageOverride(storageUrl);
  return out;
}

/**
 * The `storage` values for a URL given on the command line or in the environment: it
 * replaces the file's choice of backend too, and a relative SQLite path is taken from the
 * current directory.
 */
export function storageOverride(url: string, cwd = process.cwd()): Record<string, unknown> {
  const backend = storageBackendOf(url);
  return { url: backend === "sqlite" ? resolveSqliteUrl(url, cwd) : url, ...(backend ? { backend } : {}) };
}

/** `sqlite:PATH` with PATH made absolute against `base`. */
export function resolveSqliteUrl(url: string, base: string): string {
  return `sqlite:${path.resolve(base, url.slice("sqlite:".length))}`;
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
}): ServerConfig {
  let fileValues: Record<string, unknown> = {};
  if (opts.file) {
    fileValues = readConfigFile(opts.file);
    const base = path.dirname(path.resolve(opts.file));
    if (typeof fileValues.dataDir === "string") fileValues.dataDir = path.resolve(base, fileValues.dataDir);
    const storage = fileValues.storage;
    if (
      isPlainObject(storage) &&
      typeof storage.url === "string" &&
      storageBackendOf(storage.url) === "sqlite"
    ) {
      fileValues.storage = { ...storage, url: resolveSqliteUrl(storage.url, base) };
    }
  }
  const merged = mergeDeep(mergeDeep(fileValues, fromEnvironment(opts.env ?? {})), opts.overrides ?? {});
  const result = ServerConfigSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigError("invalid configuration:\n" + lines.join("\n"));
  }
  const config = result.data;
  config.dataDir = path.resolve(config.dataDir);
  return config;
}
