/** SCRAM-SHA-1 (RFC 5802), without channel binding. */
import { ScramMechanism } from "./scram.js";

export const scramSha1 = new ScramMechanism("SHA-1", false);

/** The same mechanism when no -PLUS mechanism is offered: a client's "y" flag is then no downgrade. */
export const scramSha1NoPlusOffered = new ScramMechanism("SHA-1", false, { plusOffered: () => false });
