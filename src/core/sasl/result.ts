/** Small builders for SaslResult values, and strict decoding of client data. */
import type { SaslFailureCondition, SaslResult } from "./mechanism.js";

export function challenge(data: Buffer | string): SaslResult {
  return { kind: "challenge", data: typeof data === "string" ? Buffer.from(data, "utf8") : data };
}

export function failure(condition: SaslFailureCondition, text?: string, username?: string): SaslResult {
  const result: SaslResult = { kind: "failure", condition };
  if (text !== undefined) result.text = text;
  if (username !== undefined) result.username = username;
  return result;
}

/** The password or proof for `username` was checked and is wrong. */
export function wrongPassword(username: string): SaslResult {
  return { kind: "failure", condition: "not-authorized", username, passwordChecked: true };
}

// fatal: invalid UTF-8 is an error; ignoreBOM: a BOM stays in the text (and then fails the grammar).
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes client data as UTF-8; undefined when it is not valid UTF-8. */
export function decodeUtf8(data: Buffer): string | undefined {
  try {
    return UTF8.decode(data);
  } catch {
    return undefined;
  }
}
