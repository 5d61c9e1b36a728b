/** SCRAM-SHA-256-PLUS (RFC 7677): SCRAM bound to the TLS channel (RFC 5929, RFC 9266). */
import { ScramMechanism } from "./scram.js";

export const scramSha256Plus = new ScramMechanism("SHA-256", true);
