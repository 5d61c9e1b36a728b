/** SCRAM-SHA-1-PLUS (RFC 5802): SCRAM bound to the TLS channel (RFC 5929, RFC 9266). */
import { ScramMechanism } from "./scram.js";

export const scramSha1Plus = new ScramMechanism("SHA-1", true);
