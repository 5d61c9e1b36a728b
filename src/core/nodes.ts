/**
 * The other nodes of a cluster, as the core and modules may use them: request and answer
 * between two nodes, by kind, and things one node owns at a time. Absent on a single
 * server. The cluster (src/cluster) provides it over NATS; a module that keeps state a
 * client may take to another node (stream management's sessions) serves a kind and asks
 * for it; one whose state lives on one node (a group chat room) claims its name and sends
 * what concerns it to the owner (core/owned-route.ts).
 */

/** JSON values: what a request and its answer may carry. */
export type NodeMessage = null | boolean | number | string | NodeMessage[] | { [key: string]: NodeMessage };

/** What a module does with the names of its scope that a node which is gone owned. */
export interface TakeoverHandler {
  /**
   * This node has just taken `name` over from a node that is gone (died, or stopped or
   * restarted without giving it up), and serves nothing of it yet: stanzas for it wait until
   * this resolves. Errors are logged; the name is this node's anyway.
   */
  takenOver(name: string): Promise<void>;
  /**
   * On the node that settles the claims of a node that died: whether to take `name` over at
   * once (then `takenOver` runs) rather than free it for the next node that needs it.
   */
  inherit(name: string): Promise<boolean>;
}

export interface NodeBus {
  /** This node's name. */
  readonly node: string;
  /** Answers the requests of `kind` other nodes send to this one; returns the function that stops it. */
  serve(kind: string, handler: (body: NodeMessage) => NodeMessage | Promise<NodeMessage>): () => void;
  /**
   * Sends a request of `kind` to `node`; resolves with its answer, or with undefined when the
   * node is gone, serves no such kind, or does not answer within `timeoutMs`.
   */
  ask(node: string, kind: string, body: NodeMessage, timeoutMs?: number): Promise<NodeMessage | undefined>;
  /**
   * The node owning `name` in `scope` (one node at a time, cluster-wide); this node claims it
   * when no live node does: nobody has, or its owner died, restarted or stopped. `fresh`:
   * read the claims even when this node knows an owner (one that may have given it up since).
   */
  owner(scope: string, name: string, opts?: { fresh?: boolean }): Promise<string>;
  /** The owner when this node knows it without asking (itself, or a node it knows alive). */
  ownerNow(scope: string, name: string): string | undefined;
  /**
   * The live node holding `name` now, read from the claims (not from what this node knew)
   * without claiming it (undefined when none does): for what only the node a client attached
   * to can serve (a component).
   */
  holder(scope: string, name: string): Promise<string | undefined>;
  /** Gives up this node's claim of `name` (what it named ended here). */
  disown(scope: string, name: string): Promise<void>;
  /**
   * Calls `listener` with each node that leaves the cluster: stopped, drained, restarted, or
   * silent past the node timeout (its sessions have left the directory by then). Returns
   * the function that stops it.
   */
  onNodeGone(listener: (node: string) => void): () => void;
  /**
   * Calls `listener` with the names this node owned and finds claimed by another node: it
   * was cut off from the cluster long enough to be taken for dead. Returns the removal.
   */
  onOwnershipLost(listener: (scope: string, name: string) => void): () => void;
  /** Sets what this node does with the names of `scope` it takes over from a node that is gone; returns the removal. */
  onTakeover(scope: string, handler: TakeoverHandler): () => void;
}
