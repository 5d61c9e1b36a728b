/** Parsing and printing shared by admin commands: instants, lists, flags, aligned tables. */
import { z } from "zod";
import { type CommandContext, CommandError } from "../core/commands.js";

/** The actor recorded in the audit log; the CLI passes "cli:<os user>". */
export function actorOf(ctx: CommandContext): string {
  return ctx.actor ?? "unknown";
}

// Date, then time with at least minutes, then a mandatory offset: an instant must not depend on the reader's zone.
const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,9})?)?(Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)$/;

/** Parses an ISO-8601 instant with a time zone ("2027-01-15T00:00:00Z", "…+01:00"). */
export function parseInstant(what: string, text: string): number {
  const m = ISO_INSTANT.exec(text.trim());
  const at = m ? Date.parse(text.trim()) : Number.NaN;
  if (!m || !Number.isFinite(at)) {
    throw new CommandError(
      `${what}: "${text}" is not an ISO-8601 instant with a time zone, e.g. 2027-01-15T00:00:00Z`,
    );
  }
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) {
    throw new CommandError(`${what}: "${text}" is not a calendar date`);
  }
  return at;
}

export const iso = (at: number) => new Date(at).toISOString();

/** A repeatable option's values, each of which may also be a comma-separated list. */
export const listInput = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) =>
    (v === undefined ? [] : Array.isArray(v) ? v : [v])
      .flatMap((s) => s.split(","))
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  );

/** A flag as the CLI gives it (true) or as JSON might (true/false, "true"/"false"). */
export const flagInput = z
  .union([z.boolean(), z.enum(["true", "false"])])
  .optional()
  .transform((v) => v === true || v === "true");

/** Lines "label: value" aligned, for messages. */
export function table(rows: [string, string][]): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
