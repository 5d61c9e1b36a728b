/**
 * Server side of SASL (RFC 6120 §6, RFC 4422): the interface every mechanism
 * implements, and the choice of mechanisms offered on one connection.
 */
import type { ScramCredential, ScramHash } from "../storage/types.js";
import { plain } from "./plain.js";
import { scramSha1, scramSha1NoPlusOffered } from "./scram-sha-1.js";
import { scramSha1Plus } from "./scram-sha-1-plus.js";
import { scramSha256, scramSha256NoPlusOffered } from "./scram-sha-256.js";
import { scramSha256Plus } from "./scram-sha-256-plus.js";

export interface SaslContext {
  /**
   * The account key (core/jid.ts accountKey()) of a localpart on the served domain of this
   * stream: what getCredential takes and what a result's `username` is.
   */
  accountKey(local: string): string;
  /** Looks up the account's credentials for one hash; undefined when the account does not exist or is disabled. */
  getCredential(username: string, hash: ScramHash): Promise<ScramCredential | undefined>;
  /**
   * Channel-binding data for a type ("tls-exporter" | "tls-server-end-point" | "tls-unique"), or
   * undefined if unavailable. May answer types that channelBindingTypes() does not advertise.
   */
  channelBinding(type: string): Buffer | undefined;
  /** The channel-binding types this connection advertises (XEP-0440), best first; empty without TLS. */
  channelBindingTypes(): string[];
  /** TLS is in place. */
  secure: boolean;
  /** The served domain: the only authzid accepted is the user's own bare JID at this domain (RFC 6120 §6.3.8). */
  domain: string;
  /**
   * Secret from which the fake salts answered for unknown accounts are derived. Keep it stable across
   * restarts: a salt that changes would tell an unknown account from a real one. When absent, a secret
   * drawn once per process is used.
   */
  decoySecret?: Buffer;
  /** Iteration count given to fake credentials: the count new accounts get (config scramIterations). */
  iterations?: number;
}

export type SaslFailureCondition =
  | "not-authorized"
  | "malformed-request"
  | "invalid-authzid"
  | "encryption-required"
  | "temporary-auth-failure"
  | "account-disabled"
  | "invalid-mechanism";

export type SaslResult =
  | { kind: "challenge"; data: Buffer }
  | { kind: "success"; username: string; data?: Buffer }
  | {
      kind: "failure";
      condition: SaslFailureCondition;
      text?: string;
      /** The account the attempt named, once known (whether or not it exists): for per-account failure limits. */
      username?: string;
      /**
       * A password (or SCRAM proof) was checked and was wrong: a guess, which login limits count.
       * Refusals before that (mechanism, channel binding, syntax) tell nothing about the password.
       */
      passwordChecked?: boolean;
    };

/**
 * One authentication attempt. The first call carries the client's initial response (an empty buffer
 * when the <auth/> element had none); each later call carries one <response/>.
 */
export interface SaslExchange {
  step(response: Buffer): Promise<SaslResult>;
}

export interface SaslMechanism {
  name: string;
  available(ctx: SaslContext): boolean;
  start(ctx: SaslContext): SaslExchange;
}

/** Every mechanism this server implements, in its default preference order. */
export const SUPPORTED_MECHANISMS = [
  "SCRAM-SHA-256-PLUS",
  "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-256",
  "SCRAM-SHA-1",
  "PLAIN",
] as const;

const BY_NAME = new Map<string, SaslMechanism>(
  [scramSha256Plus, scramSha1Plus, scramSha256, scramSha1, plain].map((m) => [m.name, m]),
);

/**
 * The mechanisms to offer on a connection, in preference order: the order of `enabled` (the
 * configured list; unknown names are skipped), else SUPPORTED_MECHANISMS.
 */
export function mechanismsFor(ctx: SaslContext, enabled?: readonly string[]): SaslMechanism[] {
  const names = enabled ?? SUPPORTED_MECHANISMS;
  const out: SaslMechanism[] = [];
  for (const name of names) {
    const m = BY_NAME.get(name);
    if (m?.available(ctx) && !out.includes(m)) out.push(m);
  }
  // RFC 5802 §6: a client's "y" flag counts as a downgrade only if a -PLUS mechanism was really offered.
  // When configuration leaves them all out, the plain SCRAM variants must not fail on "y".
  if (!out.some((m) => m.name.endsWith("-PLUS"))) {
    return out.map((m) =>
      m === scramSha256 ? scramSha256NoPlusOffered : m === scramSha1 ? scramSha1NoPlusOffered : m,
    );
  }
  return out;
}

/** Finds an offered mechanism by the name the client chose; undefined → <invalid-mechanism/>. */
export function selectMechanism(
  offered: readonly SaslMechanism[],
  name: string | undefined,
): SaslMechanism | undefined {
  return name === undefined ? undefined : offered.find((m) => m.name === name);
}
