/**
 * The console acts only through the admin command definitions, the same ones the CLI and
 * the HTTP API use, run by the server's HttpContext.runCommand like the API: the input is
 * validated by the command's own schema and the command runs in-process with the
 * signed-in admin as actor ("console:<account>"). For forms, a validation problem is
 * turned into messages by field.
 */

import type { Clock } from "../../core/clock.js";
import { CommandError, type CommandResult, commandErrorOf } from "../../core/commands.js";
import type { Storage } from "../../core/storage/types.js";
import { findCommand, runCommand } from "../api/run.js";
import type { FieldErrors } from "../assets/components.js";
import { FORM_ERROR } from "../assets/components.js";
import type { HttpContext } from "../context.js";
import { type FieldError, ProblemError } from "../problem.js";
import { dryRunStorage } from "./dry-run.js";

/** The input did not pass the command's schema: messages by input field (a 400 like any refusal). */
export class InputError extends CommandError {
  constructor(readonly fields: FieldErrors) {
    super(
      Object.entries(fields)
        .map(([k, m]) => (k === FORM_ERROR ? m : `${k}: ${m}`))
        .join("; "),
      400,
    );
    this.name = "InputError";
  }
}

/** What running a command from the console needs: the server's HTTP context, in part. */
export type CommandRunner = Pick<HttpContext, "config" | "live" | "commands" | "runCommand"> & {
  storage: Storage;
  clock: Clock;
};

/** Field messages of a validation problem, keyed by the input field's name. */
function asInputError(err: unknown): unknown {
  if (!(err instanceof ProblemError) || err.problemType !== "validation-error") return err;
  const fields: FieldErrors = {};
  for (const e of (err.extensions.errors as FieldError[] | undefined) ?? []) {
    const key = e.path === "" ? FORM_ERROR : e.path.split(".")[0]!;
    fields[key] ??= e.message;
  }
  return new InputError(Object.keys(fields).length > 0 ? fields : { [FORM_ERROR]: err.message });
}

/**
 * Runs a command exactly as the API does, as `actor`. Throws InputError for invalid input,
 * CommandError for a refusal by the command (both are for the user to fix).
 */
export async function consoleCommand(
  runner: CommandRunner,
  actor: string,
  name: string,
  raw: Record<string, unknown>,
): Promise<CommandResult> {
  try {
    return await runner.runCommand(name.split(" "), raw, actor);
  } catch (err) {
    throw asInputError(err);
  }
}

/** Runs a command on a storage whose writes vanish: its result says what it would have done. */
export async function dryRunCommand(
  runner: CommandRunner,
  actor: string,
  name: string,
  raw: Record<string, unknown>,
): Promise<CommandResult> {
  const def = findCommand(runner.commands, name.split(" "));
  if (!def) throw new CommandError(`this server has no command "${name}"`, 404);
  const host = {
    config: runner.config,
    storage: dryRunStorage(runner.storage),
    clock: runner.clock,
    live: runner.live,
  };
  try {
    return await runCommand(host, def, raw, actor);
  } catch (err) {
    throw asInputError(err);
  }
}

/**
 * The messages of a failed command for a form: by field when the command said which fields
 * (schema validation, or a ValidationError of the programme), else one message for the form
 * (or for `field`). Undefined when the error is a bug, not a refusal.
 */
export function formErrors(err: unknown, field: string = FORM_ERROR): FieldErrors | undefined {
  const refused = commandErrorOf(err);
  if (!refused) return undefined;
  const fields = (refused as CommandError & { fields?: unknown }).fields;
  if (fields && typeof fields === "object" && Object.keys(fields).length > 0)
    return { ...(fields as FieldErrors) };
  return { [field]: refused.message };
}

/** The message to show for a failed command, or undefined when the error is a bug. */
export function userMessage(err: unknown): string | undefined {
  return commandErrorOf(err)?.message;
}

/** Form values as command input: no CSRF field, blanks left out so optional arguments stay absent. */
export function compact(form: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(form)) {
    if (k === "_csrf") continue;
    if (typeof v === "string" && v.trim() === "") continue;
    if (Array.isArray(v)) {
      const items = v.filter((x) => typeof x !== "string" || x.trim() !== "");
      if (items.length === 0) continue;
      out[k] = items;
      continue;
    }
    out[k] = typeof v === "string" ? v.trim() : v;
  }
  return out;
}
