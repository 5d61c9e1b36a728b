import type { LoginGuard } from "../core/login-guard.js";
import type { ServerServices } from "../core/module.js";
import type { C2SCounters } from "./counters.js";
import type { TlsMaterial } from "./tls.js";

/** What a client connection needs from the server. */
export interface C2SServices extends ServerServices {
  /** Undefined when TLS is not available (plaintext-only test setups). */
  readonly tls: TlsMaterial | undefined;
  /** Stable secret for the fake SCRAM salts of unknown accounts (kept in dataDir across restarts). */
  readonly saslDecoySecret: Buffer;
  /** Failed-login limits per address and per account (shared with nothing else: XMPP logins). */
  readonly loginGuard: LoginGuard;
  /** Stanza and login-failure counters (metrics). */
  readonly counters: C2SCounters;
}
