/**
 * Strict parsing of the SCRAM messages a client sends (RFC 5802 §7): attributes in their fixed order,
 * saslname escaping, printable nonces, canonical base64, and refusal of the reserved "m" extension.
 */

/** The message breaks the grammar; the exchange fails with <malformed-request/>. */
export class ScramSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScramSyntaxError";
  }
}

/** gs2-cbind-flag: "n" (no channel binding), "y" (client could but thinks the server cannot), "p=type". */
export type ChannelBindingFlag = { kind: "n" } | { kind: "y" } | { kind: "p"; type: string };

export interface ClientFirstMessage {
  flag: ChannelBindingFlag;
  /** Unescaped authorization identity, when given. */
  authzid?: string;
  /** Unescaped username, before SASLprep. */
  username: string;
  nonce: string;
  /** The gs2-header, which the final message repeats (base64) in its "c" attribute. */
  gs2Header: string;
  /** client-first-message-bare: the first part of AuthMessage. */
  bare: string;
}

export interface ClientFinalMessage {
  /** Decoded "c" attribute: gs2-header followed by the channel-binding data, if any. */
  channelBinding: Buffer;
  nonce: string;
  proof: Buffer;
  /** client-final-message-without-proof: the last part of AuthMessage. */
  withoutProof: string;
}

const CB_NAME = /^[A-Za-z0-9.-]+$/;
// printable = %x21-2B / %x2D-7E (every visible ASCII character but ",").
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// An "=" that does not start one of the two escapes.
const BAD_ESCAPE = /=(?!2C|3D)/;
// Attribute letters this version of SCRAM defines; an extension must not reuse one.
const DEFINED_ATTRIBUTES = new Set(["a", "c", "e", "i", "m", "n", "p", "r", "s", "v"]);

export function escapeSaslName(name: string): string {
  return name.replace(/[=,]/g, (c) => (c === "=" ? "=3D" : "=2C"));
}

export function unescapeSaslName(value: string): string {
  if (value === "") throw new ScramSyntaxError("empty name");
  if (value.includes("\0")) throw new ScramSyntaxError("name contains NUL");
  if (BAD_ESCAPE.test(value)) throw new ScramSyntaxError("name contains an unescaped '='");
  return value.replace(/=2C|=3D/g, (e) => (e === "=2C" ? "," : "="));
}

function decodeBase64(value: string, what: string): Buffer {
  if (!BASE64.test(value)) throw new ScramSyntaxError(`${what} is not valid base64`);
  return Buffer.from(value, "base64");
}

function attribute(part: string | undefined, letter: string, what: string): string {
  if (part === undefined || !part.startsWith(letter + "=")) {
    if (part?.startsWith("m=")) throw new ScramSyntaxError("mandatory extension not supported");
    throw new ScramSyntaxError(`expected ${what} ("${letter}=")`);
  }
  return part.slice(2);
}

function nonceOf(part: string | undefined): string {
  const nonce = attribute(part, "r", "nonce");
  if (!PRINTABLE.test(nonce)) throw new ScramSyntaxError("nonce is empty or not printable");
  return nonce;
}

/** Optional extensions in their designated place: well-formed, not reserved, otherwise ignored. */
function checkExtensions(parts: string[]): void {
  for (const part of parts) {
    const letter = part[0];
    if (part.length < 3 || part[1] !== "=" || !letter || !/^[A-Za-z]$/.test(letter) || part.includes("\0")) {
      throw new ScramSyntaxError("malformed attribute");
    }
    if (letter === "m") throw new ScramSyntaxError("mandatory extension not supported");
    if (DEFINED_ATTRIBUTES.has(letter)) throw new ScramSyntaxError(`attribute "${letter}" out of place`);
  }
}

function parseFlag(msg: string): { flag: ChannelBindingFlag; end: number } {
  if (msg.startsWith("n,")) return { flag: { kind: "n" }, end: 2 };
  if (msg.startsWith("y,")) return { flag: { kind: "y" }, end: 2 };
  if (msg.startsWith("p=")) {
    const comma = msg.indexOf(",", 2);
    const type = comma === -1 ? "" : msg.slice(2, comma);
    if (!CB_NAME.test(type)) throw new ScramSyntaxError("malformed channel-binding name");
    return { flag: { kind: "p", type }, end: comma + 1 };
  }
  throw new ScramSyntaxError("malformed GS2 header");
}

export function parseClientFirst(msg: string): ClientFirstMessage {
  const { flag, end } = parseFlag(msg);
  const comma = msg.indexOf(",", end);
  if (comma === -1) throw new ScramSyntaxError("malformed GS2 header");
  const authzField = msg.slice(end, comma);
  let authzid: string | undefined;
  if (authzField !== "") {
    if (!authzField.startsWith("a=")) throw new ScramSyntaxError("malformed authorization identity");
    authzid = unescapeSaslName(authzField.slice(2));
  }
  const bare = msg.slice(comma + 1);
  const parts = bare.split(",");
  const username = unescapeSaslName(attribute(parts[0], "n", "username"));
  const nonce = nonceOf(parts[1]);
  checkExtensions(parts.slice(2));
  return { flag, authzid, username, nonce, gs2Header: msg.slice(0, comma + 1), bare };
}

export function parseClientFinal(msg: string): ClientFinalMessage {
  const parts = msg.split(",");
  if (parts.length < 3) throw new ScramSyntaxError("final message is incomplete");
  const channelBinding = decodeBase64(attribute(parts[0], "c", "channel binding"), "channel binding");
  const nonce = nonceOf(parts[1]);
  const last = parts[parts.length - 1]!;
  checkExtensions(parts.slice(2, -1));
  const proof = decodeBase64(attribute(last, "p", "proof"), "proof");
  return { channelBinding, nonce, proof, withoutProof: msg.slice(0, msg.length - last.length - 1) };
}

export function formatServerFirst(nonce: string, salt: Buffer, iterations: number): string {
  return `r=${nonce},s=${salt.toString("base64")},i=${iterations}`;
}
