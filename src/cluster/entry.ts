/**
 * What the cluster directory knows of one bound session, as stored in the JetStream KV bucket
 * and announced to the other nodes, and the key it is stored under.
 */
import type { Jid } from "../core/jid.js";
import type { SessionClient } from "../core/peer-sessions.js";

export interface SessionEntry {
  /** The full JID. */
  jid: string;
  /** The node holding the session, and that node's incarnation (a new one at each start). */
  node: string;
  inc: string;
  /** The session's id on its node. */
  session: string;
  /**
   * The KV revision at which the session claimed the JID: a cluster-wide order of binds, so
   * the later of two binds of one full JID wins everywhere (the older one gets `conflict`).
   */
  bind: number;
  /** Counts the session's changes after its bind, so a late copy never overrides a newer one. */
  seq: number;
  /** Its last available presence (XML), absent while unavailable. */
  presence?: string;
  priority: number;
  /**
   * When it became available: the ids of the account's other available sessions its node
   * knew then (and so exchanged presence with); the others' nodes make up for the rest.
   */
  knew?: string[];
  /** It requested the roster (an interested resource, RFC 6121 §2.1.6). */
  interested: boolean;
  transport: string;
  address: string;
  secure: boolean;
  connectedAt: number;
  /**
   * Its client as the licensing module recorded it (app, version, licence): what per-licence
   * session limits and client statistics count across the cluster. Absent until known.
   */
  client?: SessionClient;
}

/** A change of the directory that a node announces to the others. */
export type DirectoryDelta =
  | { op: "bind" | "update"; entry: SessionEntry }
  | { op: "unbind"; jid: string; node: string; bind: number };

/** A node's heartbeat, kept in the nodes bucket (its entries expire with the node timeout). */
export interface NodeInfo {
  node: string;
  inc: string;
  startedAt: number;
  at: number;
  /** How often it beats (ms): a reader tells a late heartbeat by it. Absent from older nodes. */
  heartbeatMs?: number;
  /** Its bound sessions. */
  sessions: number;
  /** Messages its clients sent in the last minute; absent until measured. */
  messagesPerMinute?: number;
  pid: number;
  domain: string;
  /** Where clients reach the node (host:port). */
  advertise?: string;
  /** The node is draining: it takes no new connections and is about to leave. */
  draining?: boolean;
}

/** KV keys admit [-/_=.a-zA-Z0-9]: the bare JID and the resource, each base64url, so an account's keys share a prefix. */
export function entryKey(jid: Jid): string {
  return `${b64(jid.bareString)}.${b64(jid.resource)}`;
}

function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64url") || "_";
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function decodeJson<T>(data: Uint8Array): T | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(data)) as T;
  } catch {
    return undefined;
  }
}
