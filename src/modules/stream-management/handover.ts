/**
 * A resumable session moving between the nodes of a cluster (XEP-0198 across nodes). A
 * client whose connection to node A died (or that A sent elsewhere while draining) resumes
 * on node B: B asks the nodes holding sessions of the account for the resumption id
 * (`sm-handover`); the node holding it applies the client's `h`, ends its copy without a
 * trace (no unavailable presence, no re-queueing) and answers with what the session was:
 * its resource, presence, counters and the stanzas the client has not acknowledged. B binds
 * the same resource on the new stream and answers `<resumed/>`, as if nothing had moved.
 */
import type { NodeMessage } from "../../core/nodes.js";

export const HANDOVER_KIND = "sm-handover";

export interface HandoverRequest {
  previd: string;
  username: string;
  h: number;
}

/** The state of a session that moves. */
export interface MovedSession {
  outcome: "moved";
  resource: string;
  presence?: string;
  priority: number;
  interested: boolean;
  directed: string[];
  /** Stanzas received from the client (its `h` on the server's side). */
  inbound: number;
  /** The client's `h`: stanzas sent to it and acknowledged. */
  acked: number;
  resumeSeconds: number;
  /** Unacknowledged stanzas, oldest first, with when each was first handed to the session. */
  queue: { xml: string; at: number }[];
}

export type HandoverAnswer =
  | MovedSession
  /** No resumable session with that id here (the asker tries the account's other nodes). */
  | { outcome: "unknown" }
  /** It ended here; `h` is what it reached (XEP-0198 `<failed h/>`). */
  | { outcome: "ended"; h: number }
  | { outcome: "too-high"; h: number; sendCount: number };

export function parseHandoverRequest(body: NodeMessage): HandoverRequest | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  const { previd, username, h } = body;
  if (typeof previd !== "string" || typeof username !== "string" || typeof h !== "number") return undefined;
  return { previd, username, h };
}

/** The answer as sent between nodes of one cluster (same code on both sides): only its shape is checked. */
export function parseHandoverAnswer(body: NodeMessage | undefined): HandoverAnswer | undefined {
  if (body === null || body === undefined || typeof body !== "object" || Array.isArray(body))
    return undefined;
  const outcome = body.outcome;
  if (outcome === "moved") {
    if (typeof body.resource !== "string" || !Array.isArray(body.queue)) return undefined;
    return body as unknown as MovedSession;
  }
  if (outcome === "unknown" || outcome === "ended" || outcome === "too-high") {
    return body as unknown as HandoverAnswer;
  }
  return undefined;
}
