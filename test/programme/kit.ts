/**
 * A Programme over a temporary SQLite storage, a ManualClock and a real local SMTP server.
 * The worker polls every few milliseconds of real time; due times follow the manual clock.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CommandContext, CommandDefinition } from "../../src/core/commands.js";
import { CommandError } from "../../src/core/commands.js";
import type { ServerConfig } from "../../src/core/config.js";
import type { Storage } from "../../src/core/storage/types.js";
import { programmeCommands } from "../../src/programme/commands.js";
import { Programme, type ProgrammeOptions } from "../../src/programme/index.js";
import { loadServerConfig } from "../../src/server/config.js";
import { openStorage } from "../../src/storage/index.js";
import { ManualClock } from "../kit/harness.js";
import { SmtpSink } from "./smtp-sink.js";

export const START = Date.UTC(2027, 0, 4, 9, 0, 0);
export const ADMIN = "console:admin";
export const PUBLIC_URL = "https://portal.example.net";

const dirs: string[] = [];

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-programme-"));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface Kit {
  storage: Storage;
  clock: ManualClock;
  config: ServerConfig;
  smtp: SmtpSink;
  programme: Programme;
  /** Runs the admin command `name` ("notice send") like the CLI or the API would. */
  run(name: string, raw?: Record<string, unknown>): Promise<{ message: string; data?: unknown }>;
  /** A new Programme on the same storage and clock (a server restart). */
  restart(): Promise<Programme>;
  close(): Promise<void>;
}

export async function startKit(
  opts: { smtpUp?: boolean; mail?: Record<string, unknown>; programme?: Partial<ProgrammeOptions> } = {},
): Promise<Kit> {
  const dir = tempDir();
  const smtp = new SmtpSink();
  if (opts.smtpUp !== false) await smtp.start();
  else {
    // Reserve a free port, then leave it closed: the relay is down.
    await smtp.start();
    await smtp.stop();
  }
  const config = loadServerConfig({
    overrides: {
      domain: "chat.example.net",
      dataDir: dir,
      http: { publicUrl: PUBLIC_URL },
      mail: {
        smtp: { host: "127.0.0.1", port: smtp.port },
        from: "Example licensing <licensing@chat.example.net>",
        ...opts.mail,
      },
    },
  });
  const storage = await openStorage({ backend: "sqlite", path: join(dir, "db.sqlite") });
  const clock = new ManualClock(START);
  const make = () => new Programme({ storage, clock, config, pollIntervalMs: 10, ...opts.programme });
  let programme = make();
  programme.start();
  const kit: Kit = {
    storage,
    clock,
    config,
    smtp,
    get programme() {
      return programme;
    },
    async run(name, raw = {}) {
      const def = (programmeCommands as CommandDefinition<never>[]).find((d) => d.name.join(" ") === name);
      if (!def) throw new Error(`no command ${name}`);
      const parsed = def.input.safeParse(raw);
      if (!parsed.success) throw new CommandError(parsed.error.issues.map((i) => i.message).join("; "));
      const ctx: CommandContext = { config, storage, clock, actor: ADMIN };
      return def.run(ctx, parsed.data);
    },
    async restart() {
      await programme.stop();
      programme = make();
      programme.start();
      return programme;
    },
    async close() {
      await programme.stop();
      await smtp.stop();
      await storage.close();
    },
  };
  return kit;
}

/** Waits until `check` holds (polling), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The form of an application as a page posts it. */
export function applicationForm(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    organisation: "Example Software Ltd",
    contactName: "Ada Example",
    contactEmail: "licensing@example.com",
    appName: "Example Chat",
    description: "A chat client for desktop and phones.\nEnd-to-end encryption by default.",
    platforms: "linux, android",
    website: "https://www.example.com/chat",
    expectedUsers: "25000",
    scope: "client",
    termsAccepted: "on",
    ...overrides,
  };
}
