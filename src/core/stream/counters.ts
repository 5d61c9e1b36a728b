/**
 * Traffic counters of client connections, read by the metrics endpoint. Plain numbers
 * in plain objects: the stanza path only increments a property.
 */
import type { StanzaKind } from "../events.js";

export interface StreamCounters {
  /** Stanzas received from bound clients, by kind. */
  stanzasIn: Record<StanzaKind, number>;
  /** Stanzas written to clients, by kind. */
  stanzasOut: Record<StanzaKind, number>;
  /** SASL failures sent, by condition (aborted exchanges excluded). */
  authFailures: Record<string, number>;
}

export function newStreamCounters(): StreamCounters {
  return {
    stanzasIn: { message: 0, presence: 0, iq: 0 },
    stanzasOut: { message: 0, presence: 0, iq: 0 },
    authFailures: {},
  };
}
