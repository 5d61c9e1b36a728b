/**
 * The sessions of the other nodes of a cluster, as far as a module counts them: the licensing
 * module counts a licence's sessions on every node against its limit, and its statistics count
 * an account once however many nodes hold its sessions. Every node keeps a replica of the
 * cluster's session directory, so these are lookups in memory. A single server has no peers
 * (`SessionDirectory.peers` is undefined) and counts its own sessions only.
 */
import type { ClientSession } from "./session.js";

/**
 * What a session's client is, as the licensing module recorded it at login (proof, SASL2
 * user agent, XEP-0092 answer): the part of that record the other nodes are told.
 */
export interface SessionClient {
  clientId?: string;
  version?: string;
  platform?: string;
  keyId?: string;
  /** The licence the session runs under (a verified client). */
  licenceId?: string;
  verified: boolean;
}

/** A session bound on another node. */
export interface PeerSession {
  /** Its account key (as `ClientSession.username`). */
  readonly username: string;
  /** The node holding it. */
  readonly node: string;
  /**
   * The cluster-wide order of its bind: a later bind has a higher number on every node (the
   * revision of its claim in the directory bucket).
   */
  readonly bindOrder: number;
  /** What its node said of its client (undefined before its node told). */
  readonly client: SessionClient | undefined;
}

export interface PeerSessions {
  /** This node's name. */
  readonly node: string;
  /**
   * Makes the directory entry of every session of this node carry what `describe` says of its
   * client; `SessionDirectory.updated(session)` tells the other nodes when it changed.
   */
  describeClients(describe: (session: ClientSession) => SessionClient | undefined): void;
  /** The cluster-wide bind order of a session of this node (undefined when it is not in the directory). */
  bindOrderOf(session: ClientSession): number | undefined;
  /** The sessions of other nodes running under a licence (looked up, not scanned). */
  underLicence(licenceId: string): ReadonlySet<PeerSession>;
  /** The sessions of other nodes of one account (its account key). */
  ofAccount(username: string): PeerSession[];
  /** Every session of other nodes. */
  all(): Iterable<PeerSession>;
  /**
   * Calls `listener` with the licence after a session of another node started or stopped
   * running under it (bound, moved to another licence, ended, its node gone). Returns its removal.
   */
  onLicenceChange(listener: (licenceId: string) => void): () => void;
}
