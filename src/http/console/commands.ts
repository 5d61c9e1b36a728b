/**
 * The console acts only through the admin command definitions, the same ones the CLI and
 * the HTTP API use, run by the same function as the API (api/run.ts): the input is
 * validated by the command's own schema and the command runs in-process with the
 * signed-in admin as actor ("console:<account>"). For forms, a validation problem is
 * turned into messages by field.
 */
import { type CommandDefinition, CommandError, type CommandResult } from "../../commands/command.js";
import { allCommands } from "../../commands/index.js";
import { type CommandHost, findCommand, runCommand } from "../api/run.js";
import type { FieldErrors } from "../assets/components.js";
import { FORM_ERROR } from "../assets/components.js";
import { type FieldError, ProblemError } from "../problem.js";

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

function commandNamed(name: string): CommandDefinition<never> | undefined {
  return findCommand(allCommands, name.split(" "));
}

/** Whether this server offers a command (some belong to parts that may not be installed). */
export function hasCommand(name: string): boolean {
  return commandNamed(name) !== undefined;
}

/**
 * Validates `raw` with the command's schema and runs it as `actor`. Throws InputError for
 * invalid input, CommandError for a refusal by the command (both are for the user to fix).
 */
export async function consoleCommand(
  host: CommandHost,
  actor: string,
  name: string,
  raw: Record<string, unknown>,
): Promise<CommandResult> {
  const def = commandNamed(name);
  if (!def) throw new CommandError(`this server has no command "${name}"`, 404);
  try {
    return await runCommand(host, def, raw, actor);
  } catch (err) {
    if (err instanceof ProblemError && err.problemType === "validation-error") {
      const fields: FieldErrors = {};
      for (const e of (err.extensions.errors as FieldError[] | undefined) ?? []) {
        const key = e.path === "" ? FORM_ERROR : e.path.split(".")[0]!;
        fields[key] ??= e.message;
      }
      throw new InputError(Object.keys(fields).length > 0 ? fields : { [FORM_ERROR]: err.message });
    }
    throw err;
  }
}

/** The message to show for a failed command, or undefined when the error is a bug. */
export function userMessage(err: unknown): string | undefined {
  return err instanceof CommandError ? err.message : undefined;
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
