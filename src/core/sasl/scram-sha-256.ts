/** SCRAM-SHA-256 (RFC 7677), without channel binding. */
import { ScramMechanism } from "./scram.js";

export const scramSha256 = new ScramMechanism("SHA-256", false);

/** The same mechanism when no -PLUS mechanism is offered: a client's "y" flag is then no downgrade. */
export const scramSha256NoPlusOffered = new ScramMechanism("SHA-256", false, { plusOffered: () => false });
