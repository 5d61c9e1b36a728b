/** Whether an error, or one of the errors it was caused by (a few levels down), passes `test`. */
export function hasCause(err: unknown, test: (e: Error) => boolean): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (test(e)) return true;
  }
  return false;
}

/** The error's `code`, when it has a string one (drivers and the system set it). */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}
