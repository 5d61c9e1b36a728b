/**
 * Logs a recurring failure once per window, then how many more times it happened in it. A
 * full disk or a database that is down fails every message: a line with its stack for each
 * would bury the first one, and fill the disk the log goes to.
 */
import type { Logger } from "pino";
import { errorCode } from "./storage/causes.js";

/** Kinds of failure followed at once; past it, failures are logged as they come. */
const MAX_KINDS = 1000;

export class LogThrottle {
  readonly #open = new Map<string, { repeated: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly log: Logger,
    private readonly windowMs = 10_000,
  ) {}

  /** Logs `msg` at error level unless a failure of the same `kind` was logged within the window. */
  error(kind: string, fields: Record<string, unknown>, msg: string): void {
    const open = this.#open.get(kind);
    if (open) {
      open.repeated++;
      return;
    }
    this.log.error(fields, msg);
    if (this.#open.size >= MAX_KINDS) return;
    const entry = {
      repeated: 0,
      timer: setTimeout(() => {
        this.#open.delete(kind);
        if (entry.repeated > 0)
          this.log.error(
            { kind, repeated: entry.repeated, windowSeconds: this.windowMs / 1000 },
            `${msg}: ${entry.repeated} more times in ${this.windowMs / 1000} s`,
          );
      }, this.windowMs),
    };
    entry.timer.unref();
    this.#open.set(kind, entry);
  }

  /** Stops the windows (and their summaries). */
  stop(): void {
    for (const { timer } of this.#open.values()) clearTimeout(timer);
    this.#open.clear();
  }
}

/**
 * What tells failures apart for throttling: a code when the error has one, else its name and
 * message (two different bugs must not share a window, where one would hide the other).
 */
export function failureKind(err: unknown): string {
  if (!(err instanceof Error)) return typeof err;
  const code = errorCode(err);
  return code !== undefined ? `${err.name}:${code}` : `${err.name}:${err.message.slice(0, 200)}`;
}
