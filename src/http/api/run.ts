/**
 * Running an admin command from a web face (the JSON API, and the console's forms): the
 * raw input is validated by the command's own zod schema (a 400 problem listing each
 * field path otherwise), then the command runs with the server's storage, clock and live
 * sessions and the caller as actor. CommandError becomes a problem with its status in the
 * error handler (400/404/409).
 */
import type { z } from "zod";
import type { Clock } from "../../core/clock.js";
import type { CommandContext, CommandDefinition, CommandResult, LiveServer } from "../../core/commands.js";
import type { ServerConfig } from "../../core/config.js";
import type { Storage } from "../../core/storage/types.js";
import { type FieldError, ProblemError } from "../problem.js";
import { CSRF_FIELD } from "../sessions.js";
import { inputSchema } from "./openapi.js";

export interface CommandHost {
  config: ServerConfig;
  storage: Storage;
  clock: Clock;
  live: LiveServer;
}

export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
}

/**
 * The command's input from a query string or a body: an object of fields, without the
 * CSRF field. Anything but an object (a JSON array, a string) is a validation problem.
 */
export function rawInput(source: unknown): Record<string, unknown> {
  if (source === undefined || source === null) return {};
  if (typeof source !== "object" || Array.isArray(source)) {
    throw new ProblemError(400, "validation-error", "the input must be an object of named fields", {
      errors: [{ path: "", message: "expected an object" }],
    });
  }
  const out: Record<string, unknown> = { ...(source as Record<string, unknown>) };
  delete out[CSRF_FIELD];
  return out;
}

/**
 * Fields the command does not take, as validation errors. The API refuses them rather than
 * dropping them, as the CLI refuses an unknown option: a misspelt field (`stages` for
 * `stage`) would otherwise leave the change half made under a "done" answer.
 */
export function unknownFields(def: CommandDefinition<never>, raw: Record<string, unknown>): FieldError[] {
  const names = fieldNames(def);
  const taken = [...names].join(", ") || "no fields";
  return Object.keys(raw)
    .filter((k) => !names.has(k))
    .map((path) => ({ path, message: `unknown field: ${def.name.join(" ")} takes ${taken}` }));
}

const fieldNamesOf = new WeakMap<CommandDefinition<never>, ReadonlySet<string>>();

/** The fields a command's input takes: the properties of its input schema (its arguments, and any alias). */
function fieldNames(def: CommandDefinition<never>): ReadonlySet<string> {
  let names = fieldNamesOf.get(def);
  if (!names) {
    const properties = (inputSchema(def).properties ?? {}) as Record<string, unknown>;
    names = new Set([...def.args.map((a) => a.name), ...Object.keys(properties)]);
    fieldNamesOf.set(def, names);
  }
  return names;
}

/** Validates and runs a command; throws ProblemError (invalid input) or CommandError (refused). */
export async function runCommand(
  host: CommandHost,
  def: CommandDefinition<never>,
  raw: Record<string, unknown>,
  actor: string,
): Promise<CommandResult> {
  if (def.local)
    throw new ProblemError(404, "not-found", `${def.name.join(" ")} runs on the command line only`);
  const parsed = await (def.input as z.ZodType<unknown>).safeParseAsync(raw);
  if (!parsed.success) {
    const errors = fieldErrors(parsed.error);
    throw new ProblemError(
      400,
      "validation-error",
      errors.map((e) => `${e.path || "input"}: ${e.message}`).join("; "),
      { errors },
    );
  }
  const ctx: CommandContext = {
    config: host.config,
    storage: host.storage,
    clock: host.clock,
    live: host.live,
    actor,
  };
  return (def as CommandDefinition<unknown>).run(ctx, parsed.data);
}

/** The command with these words, e.g. ["licence", "grant"]. */
export function findCommand(
  commands: readonly CommandDefinition<never>[],
  words: readonly string[],
): CommandDefinition<never> | undefined {
  return commands.find((c) => c.name.length === words.length && c.name.every((w, i) => w === words[i]));
}
