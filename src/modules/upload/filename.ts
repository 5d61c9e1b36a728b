/**
 * The file names the upload service accepts: one plain path segment that shows as what it
 * is. The name is part of the file's URL, its path on disk and the name a browser saves it
 * under, and clients show it to the recipient.
 */

/** Longest name, in UTF-8 bytes (what most file systems allow for one path segment). */
export const MAX_FILENAME_BYTES = 255;

/**
 * Characters that do not show as themselves: controls (C0, DEL, C1), the line and paragraph
 * separators, and the bidirectional formatting characters (ALM, LRM, RLM, LRE to RLO, LRI to
 * PDI), with which a right-to-left override makes "photo\u202Egpj.exe" read "photoexe.jpg".
 */
const HIDDEN = "\\p{Cc}\\p{Zl}\\p{Zp}\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069";
const HIDDEN_ONE = new RegExp(`[${HIDDEN}]`, "u");

/**
 * Characters drawn like a slash or a backslash, with which "bank\u2215statement.pdf" reads as
 * a file in a folder: DIVISION SLASH, FRACTION SLASH, FULLWIDTH SOLIDUS, BIG SOLIDUS,
 * FULLWIDTH REVERSE SOLIDUS, SET MINUS and BIG REVERSE SOLIDUS.
 */
const SLASH_LIKE = "\\u2215\\u2044\\uff0f\\u29f8\\uff3c\\u2216\\u29f9";
const SLASH_LIKE_ONE = new RegExp(`[${SLASH_LIKE}]`, "u");

/** The characters to replace in names stored before they were refused (no stored name holds "/" or "\\"). */
const UNSHOWN_ALL = new RegExp(`[${HIDDEN}${SLASH_LIKE}]`, "gu");

/** Why a requested file name is refused (the name itself is not quoted), or undefined. */
export function filenameProblem(name: string): string | undefined {
  if (name === "") return "the file name is missing";
  if (name.startsWith(".")) return "the file name must not start with a dot";
  if (Buffer.byteLength(name) > MAX_FILENAME_BYTES)
    return `the file name is longer than ${MAX_FILENAME_BYTES} bytes`;
  if (/[/\\]/.test(name)) return "the file name must not contain a path separator (/ or \\)";
  if (SLASH_LIKE_ONE.test(name))
    return "the file name must not contain characters that look like a slash or a backslash";
  if (HIDDEN_ONE.test(name))
    return "the file name must not contain control characters, line separators or bidirectional formatting characters";
  return undefined;
}

/**
 * The name to offer a browser: each hidden or slash-like character becomes "_", for files
 * stored before those characters were refused.
 */
export function shownFilename(name: string): string {
  return name.replace(UNSHOWN_ALL, "_");
}
