/** The message module's API for other modules (published as ctx.api("message")). */
import type { Jid } from "../../core/jid.js";
import type { ClientSession } from "../../core/session.js";

export interface MessageApi {
  /** Is the session available for messages to the bare JID (RFC 6121 §8.5.2.1.1)? */
  isAvailable(session: ClientSession): boolean;
  /**
   * The sessions a message of type chat or normal to the local address `to` is delivered
   * to (RFC 6121 §8.5.2.1.1 and §8.5.3): the session of a full JID when it is bound, else
   * the highest-priority available resources; empty when the message goes to offline storage.
   */
  recipientsOf(to: Jid): ClientSession[];
}
