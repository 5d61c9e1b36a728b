/**
 * Admin commands are defined once, as data: a name, a description, the
 * arguments (a zod schema, so every face validates the same way) and a run
 * function. The CLI builds its subcommands from these definitions; the HTTP
 * admin API and the console expose the same list.
 */
import type { z } from "zod";
import type { Clock } from "./clock.js";
import type { ServerConfig } from "./config.js";
import type { Storage } from "./storage/types.js";

export interface CommandContext {
  config: ServerConfig;
  storage: Storage;
  clock: Clock;
  /** Present when the command runs inside a live server (HTTP API, console), absent from the CLI. */
  live?: LiveServer;
  /** Who runs the command, for audit logs: "cli:<os user>", "api:<token name>", "console:<account>". */
  actor?: string;
}

/** What a command may do to a running server beyond storage (e.g. disconnect a deleted account). */
export interface LiveServer {
  /** Closes every session of the account; returns how many. */
  disconnectAccount(username: string, reason: string): number;
  /** The bound sessions of an account. */
  sessionsOf(username: string): LiveSession[];
  /** Closes one session of an account; false when it has none with that resource. */
  kick(username: string, resource: string, reason: string): boolean;
  /** The API a loaded module provides (ModuleContext.provide), e.g. its live links; undefined if none. */
  api<T>(moduleName: string): T | undefined;
}

/** One bound session, as admin faces show it. */
export interface LiveSession {
  resource: string;
  address: string;
  transport: string;
  secure: boolean;
  connectedAt: number;
  /** The client as recorded at login (licence proof or self-description), when known. */
  client?: { clientId?: string; version?: string; platform?: string; verified: boolean };
}

export interface CommandArg {
  /** camelCase, the key in the input; the CLI option is its kebab-case form (minVersion → --min-version). */
  name: string;
  description: string;
  /** Positional arguments come first on the command line; the others are --options. */
  positional?: boolean;
  /** For the CLI: the option takes no value. */
  flag?: boolean;
  /** For the CLI: the option may be given several times; the input receives an array of the values. */
  repeatable?: boolean;
  /**
   * A former name kept working: the argument that replaces it (its camelCase name). The CLI
   * says so in --help and warns when it is used; the OpenAPI document marks it deprecated.
   */
  deprecatedFor?: string;
}

export interface CommandResult<Data = unknown> {
  /** One line for people. */
  message: string;
  /** Structured result for the API and `--json`. */
  data?: Data;
}

export interface CommandDefinition<Input = unknown, Output = unknown> {
  /** Words, e.g. ["user", "add"]. */
  name: string[];
  description: string;
  args: CommandArg[];
  input: z.ZodType<Input>;
  /** Changes state (HTTP: POST) or only reads it (HTTP: GET). */
  mutates: boolean;
  /**
   * Does not work on the configured server's data: local files (generating a key pair) or
   * storages the command names and opens itself (`storage migrate`). The CLI opens no
   * storage for it (ctx.storage must not be used), and faces that run inside the server
   * (HTTP API, console) do not offer it.
   */
  local?: boolean;
  /**
   * The layout of the result's `data` (what `--json` prints and the API answers): the JSON
   * Schema published at /api/v1/schemas/<words joined by ->.json and in the OpenAPI
   * document is generated from it, and `run` must return data of its type.
   */
  output?: z.ZodType<Output>;
  run(ctx: CommandContext, input: Input): Promise<CommandResult<Output>>;
}

export function defineCommand<Input, Output = unknown>(
  def: CommandDefinition<Input, Output>,
): CommandDefinition<Input, Output> {
  return def;
}

/** A command failed for a reason the caller can fix (bad name, unknown account, …). */
export class CommandError extends Error {
  constructor(
    message: string,
    /** HTTP-style status for the API face: 400 invalid, 404 not found, 409 conflict. */
    readonly status: 400 | 404 | 409 = 400,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

const REFUSAL_STATUS = { invalid: 400, "not-found": 404, conflict: 409 } as const;

/**
 * The command refusal an error stands for, or undefined for a fault. Domain code raises its
 * own errors; one that carries `refusal: "invalid" | "not-found" | "conflict"` (the licensing
 * domain's LicensingError, for one) is a refusal the faces show like a CommandError.
 */
export function commandErrorOf(err: unknown): CommandError | undefined {
  if (err instanceof CommandError) return err;
  if (!(err instanceof Error) || !("refusal" in err)) return undefined;
  const status = REFUSAL_STATUS[err.refusal as keyof typeof REFUSAL_STATUS];
  if (status === undefined) return undefined;
  const refusal = new CommandError(err.message, status);
  refusal.stack = err.stack;
  return refusal;
}
