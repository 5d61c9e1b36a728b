/**
 * The bound on a password's length wherever one is set: in-band registration and password
 * change (the register module, which declares the setting `modules.register.maxPasswordLength`)
 * and the admin commands that set passwords, which read the same setting also where the module
 * does not run (the CLI). Checked before any key derivation, so a huge password costs nothing.
 */
import { z } from "zod";
import { ConfigError, type CoreConfig } from "./config.js";

export const DEFAULT_MAX_PASSWORD_LENGTH = 256;

/** The setting, in characters. */
export const maxPasswordLengthSetting = z.number().int().min(1).default(DEFAULT_MAX_PASSWORD_LENGTH);

/** The configured bound (`modules.register.maxPasswordLength`, else the default). */
export function maxPasswordLength(config: Pick<CoreConfig, "modules">): number {
  const section = config.modules.register;
  const raw =
    typeof section === "object" && section !== null
      ? (section as Record<string, unknown>).maxPasswordLength
      : undefined;
  const parsed = maxPasswordLengthSetting.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `modules.register.maxPasswordLength: ${parsed.error.issues.map((i) => i.message).join("; ")}`,
    );
  }
  return parsed.data;
}

/** Why the password is too long for the bound, or undefined. */
export function passwordLengthProblem(password: string, max: number): string | undefined {
  // Counted in code points, as a user counts characters (a UTF-16 length counts some twice);
  // a code point is one or two UTF-16 units, so most lengths settle without counting.
  const long = password.length > max && (password.length > 2 * max || [...password].length > max);
  return long ? `the password must have at most ${max} characters` : undefined;
}
