/** What other modules may use of stream management (`ctx.api<StreamManagementApi>("stream-management")`). */
import type { ClientSession } from "../../core/session.js";
import type { XmlElement } from "../../core/xml/element.js";

export interface StreamManagementApi {
  /**
   * Sends `stanza` to `session` and reports its fate once known: `true` when the client
   * acknowledged it (possibly after a resumption), `false` when the session ended without
   * that acknowledgement — the stanza is then NOT re-routed: the caller still owns it (offline
   * storage keeps the message for the next login). Returns false, sending nothing, when the
   * session does not use stream management (the caller sends it the ordinary way).
   */
  sendAcknowledged(session: ClientSession, stanza: XmlElement, outcome: (acked: boolean) => void): boolean;
  /** Whether the session has stream management enabled. */
  enabled(session: ClientSession): boolean;
  /** Whether the session is kept without a connection, waiting for its client to resume it. */
  hibernated(session: ClientSession): boolean;
}
