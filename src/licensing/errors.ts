/**
 * The licensing domain's refusals. They carry what kind of refusal they are; the faces
 * (CLI, HTTP API, console, portal) turn that into an exit code, a status and a message
 * through the command layer's `commandErrorOf`, so this domain knows nothing of them.
 */
export type LicensingRefusal = "invalid" | "not-found" | "conflict";

export class LicensingError extends Error {
  constructor(
    message: string,
    readonly refusal: LicensingRefusal = "invalid",
  ) {
    super(message);
    this.name = "LicensingError";
  }
}
