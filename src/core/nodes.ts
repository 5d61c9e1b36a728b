/**
 * The other nodes of a cluster, as the core and modules may use them: request and answer
 * between two nodes, by kind. Absent on a single server. The cluster (src/cluster) provides
 * it over NATS; a module that keeps state a client may take to another node (stream
 * management's sessions) serves a kind and asks for it.
 */

/** JSON values: what a request and its answer may carry. */
export type NodeMessage = null | boolean | number | string | NodeMessage[] | { [key: string]: NodeMessage };

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
}
