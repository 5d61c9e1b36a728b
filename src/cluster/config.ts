/**
 * The cluster's section of the configuration (`cluster:`): the NATS server(s) the nodes
 * share (`--cluster`, SWITCHBOARD_CLUSTER), this node's name (`--node`, SWITCHBOARD_NODE),
 * the prefix of every subject and bucket, and how soon a silent node counts as dead.
 */
import os from "node:os";
import { z } from "zod";
import type { ConfigSection } from "../core/config.js";

/** Node names and prefixes go into NATS subjects and bucket names: letters, digits, '-' and '_'. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export const ClusterSchema = z
  .object({
    /** NATS server URL(s), comma-separated: nats://host:port. Absent: a single server, no cluster. */
    url: z
      .string()
      .regex(/^nats:\/\/[^,\s]+(,nats:\/\/[^,\s]+)*$/, "expected nats://host:port (several comma-separated)")
      .optional(),
    /** This node's name, unique in the cluster; default: the host name. */
    node: z.string().regex(NAME, "letters, digits, '-' and '_' only (1 to 64)").optional(),
    /** Prefix of the cluster's NATS subjects and JetStream buckets (several clusters may share a NATS). */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, "letters, digits, '-' and '_' only (1 to 32)")
      .default("switchboard"),
    /** Seconds without a heartbeat after which a node is dead and its sessions leave the directory. */
    nodeTimeoutSeconds: z.number().min(1).max(60).default(5),
    /**
     * Where clients reach this node (host:port, `[IPv6]:port`): the address a draining node
     * sends its clients to (`see-other-host`). Default: the first --bind address when it is
     * not a wildcard, else the host name, with the c2s port.
     */
    advertise: z
      .string()
      .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, "expected host:port or [IPv6]:port")
      .optional(),
    /** Seconds a draining node keeps the sessions it sent away for their clients to resume elsewhere. */
    drainGraceSeconds: z.number().min(0).max(3600).default(30),
    /** Seconds a node waits for another to take a stanza before counting it as undelivered. */
    deliveryTimeoutSeconds: z.number().min(0.1).max(60).default(5),
  })
  .prefault({});

export type ClusterConfig = z.output<typeof ClusterSchema>;

/** The node name when none is configured: the host name, reduced to the characters a name may hold. */
export function defaultNodeName(): string {
  const name = os
    .hostname()
    .replace(/[^A-Za-z0-9_-]/g, "-")
    .slice(0, 64);
  return name === "" ? "node" : name;
}

/** This node's client address for see-other-host: `cluster.advertise`, else derived from --bind and the c2s port. */
export function advertisedAddress(
  cluster: { advertise?: string | undefined },
  bind: string[],
  c2sPort: number,
): string {
  if (cluster.advertise !== undefined) return cluster.advertise;
  const first = bind.find((b) => b !== "0.0.0.0" && b !== "::" && b !== "*");
  const host = first ?? os.hostname();
  return `${host.includes(":") ? `[${host}]` : host}:${c2sPort}`;
}

export const clusterConfigSection: ConfigSection = {
  keys: { cluster: ClusterSchema },
  environment(env) {
    const cluster: Record<string, unknown> = {};
    if (env.SWITCHBOARD_CLUSTER) cluster.url = env.SWITCHBOARD_CLUSTER;
    if (env.SWITCHBOARD_NODE) cluster.node = env.SWITCHBOARD_NODE;
    if (env.SWITCHBOARD_CLUSTER_PREFIX) cluster.prefix = env.SWITCHBOARD_CLUSTER_PREFIX;
    if (env.SWITCHBOARD_CLUSTER_ADVERTISE) cluster.advertise = env.SWITCHBOARD_CLUSTER_ADVERTISE;
    return Object.keys(cluster).length > 0 ? { cluster } : {};
  },
};

declare module "../core/config.js" {
  interface ConfigSections {
    cluster: z.output<typeof ClusterSchema>;
  }
}
