/**
 * The licensing programme's refusals (applications, notices, the outbox, portal accounts).
 * Like the licensing domain's, they carry only what kind of refusal they are; the faces
 * (CLI, HTTP API, console, portal) turn that into an exit code, a status and a message
 * through the command layer's `commandErrorOf`, so the programme's services know nothing of them.
 */
export type ProgrammeRefusal = "invalid" | "not-found" | "conflict";

export class ProgrammeError extends Error {
  constructor(
    message: string,
    readonly refusal: ProgrammeRefusal = "invalid",
  ) {
    super(message);
    this.name = "ProgrammeError";
  }
}

/** Is this the programme's (or the licensing domain's) refusal of that kind? */
export function isRefusal(err: unknown, refusal: ProgrammeRefusal): boolean {
  return err instanceof Error && "refusal" in err && (err as { refusal: unknown }).refusal === refusal;
}
