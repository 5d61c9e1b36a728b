/** Checks of user-supplied text shared by the programme's services; failures are "invalid" refusals. */
import { checkEmail } from "../licensing/index.js";
import { isRefusal, ProgrammeError } from "./errors.js";

/** Invalid input with a message per form field, so a page can show each next to its field. */
export class ValidationError extends ProgrammeError {
  constructor(readonly fields: Record<string, string>) {
    super(
      Object.entries(fields)
        .map(([f, m]) => `${f}: ${m}`)
        .join("; "),
      "invalid",
    );
    this.name = "ValidationError";
  }
}

/** The per-field messages of a refusal, when it has them (a ValidationError). */
export function fieldsOf(err: unknown): Record<string, string> | undefined {
  return err instanceof ValidationError && Object.keys(err.fields).length > 0 ? err.fields : undefined;
}

/** Control characters other than line breaks and tabs (allowed in multi-line text). */
const CONTROL_INLINE = /\p{Cc}/u;
const CONTROL_MULTILINE = /[^\P{Cc}\n\r\t]/u;

/** Trimmed text of 1..max characters; multi-line text may contain line breaks. */
export function textProblem(value: unknown, max: number, multiline = false): string | undefined {
  if (typeof value !== "string" || value.trim() === "") return "must not be empty";
  const text = value.trim();
  if (text.length > max) return `must be at most ${max} characters`;
  if ((multiline ? CONTROL_MULTILINE : CONTROL_INLINE).test(text)) return "contains control characters";
  return undefined;
}

/** Email addresses compare without case: one mailbox, one account. */
export function normaliseEmail(email: string): string {
  return checkEmail(String(email ?? "")).toLowerCase();
}

export function emailProblem(email: unknown): string | undefined {
  try {
    normaliseEmail(String(email ?? ""));
    return undefined;
  } catch (err) {
    if (isRefusal(err, "invalid")) return "is not a valid email address";
    throw err;
  }
}

/** Line breaks normalised to \n, trailing spaces and surrounding blank lines removed. */
export function cleanMultiline(text: string): string {
  return text
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")
    .trim();
}
