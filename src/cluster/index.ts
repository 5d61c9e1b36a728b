/**
 * Clustering: several Switchboard nodes serving the same domains, sharing one PostgreSQL
 * and one NATS (with JetStream). The composition root joins the cluster when `cluster.url`
 * is set and hands the cluster's session directory to the core in place of the in-memory one.
 */
import type { Logger } from "pino";
import { ConfigError, type ServerConfig } from "../core/config.js";
import { advertisedAddress, defaultNodeName } from "./config.js";
import { ClusterNode } from "./node.js";

export { clusterDrainCommand, clusterStatusCommand } from "./commands.js";
export { ClusterSchema, clusterConfigSection } from "./config.js";
export { ClusterNode } from "./node.js";

/** Refuses a cluster configuration that cannot work, before anything is opened. */
export function checkClusterConfig(config: ServerConfig): void {
  if (config.cluster.url !== undefined && config.storage.backend !== "postgres") {
    throw new ConfigError(
      "a cluster needs storage every node shares: start each node with --storage postgres://… " +
        "(SQLite is a file on one machine)",
    );
  }
}

/** Joins the cluster the configuration names, or returns undefined for a single server. */
export async function joinCluster(config: ServerConfig, log: Logger): Promise<ClusterNode | undefined> {
  const { url } = config.cluster;
  if (url === undefined) return undefined;
  checkClusterConfig(config);
  const node = config.cluster.node ?? defaultNodeName();
  return ClusterNode.join(
    {
      config: { ...config.cluster, url },
      domain: config.domain,
      maxResourcesPerAccount: config.limits.maxResourcesPerAccount,
      advertise: advertisedAddress(config.cluster, config.bind, config.c2sPort),
      log,
    },
    node,
  );
}
