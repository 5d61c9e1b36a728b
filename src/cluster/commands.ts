/**
 * `cluster status`: the nodes of a cluster with their sessions, read from its NATS buckets,
 * and the health of NATS and of the storage the command was given. Defined once, offered by
 * the CLI, the HTTP API and the console like every command.
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { CommandError, defineCommand } from "../core/commands.js";
import { decodeJson, type NodeInfo, type SessionEntry } from "./entry.js";
import { clusterNames, connectNats } from "./node.js";

export interface ClusterStatus {
  prefix: string;
  nats: { url: string; ok: boolean; error?: string; server?: string; rttMs?: number };
  storage: { backend: string; ok: boolean; error?: string; ms?: number };
  nodes: {
    name: string;
    sessions: number;
    /** Milliseconds since its last heartbeat, by this machine's clock. */
    heartbeatAgeMs: number;
    startedAt: string;
    pid: number;
    domain: string;
  }[];
  sessions: number;
  /** Entries of nodes that are not alive (removed by the live nodes within the node timeout). */
  staleSessions: number;
}

const ms = (n: number) => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`);

export const clusterStatusCommand = defineCommand({
  name: ["cluster", "status"],
  description: "The cluster's nodes and their sessions, with the health of NATS and of the storage",
  args: [{ name: "cluster", description: "the cluster's NATS URL (default: cluster.url)" }],
  input: z.object({
    cluster: z
      .string()
      .regex(/^nats:\/\//, "expected nats://host:port")
      .optional(),
  }),
  mutates: false,
  async run(ctx, input) {
    const url = input.cluster ?? ctx.config.cluster.url;
    if (url === undefined)
      throw new CommandError("no cluster given: --cluster nats://HOST:PORT (or cluster.url)");
    const prefix = ctx.config.cluster.prefix;
    const status: ClusterStatus = {
      prefix,
      nats: { url, ok: false },
      storage: { backend: ctx.config.storage.backend, ok: false },
      nodes: [],
      sessions: 0,
      staleSessions: 0,
    };

    const t0 = performance.now();
    try {
      await ctx.storage.accounts.count();
      status.storage.ok = true;
      status.storage.ms = performance.now() - t0;
    } catch (err) {
      status.storage.error = (err as Error).message;
    }

    let nc: NatsConnection | undefined;
    try {
      nc = await connectNats(url, "switchboard cluster status", { reconnect: false });
      status.nats.rttMs = await nc.rtt();
      status.nats.ok = true;
      if (nc.info?.version) status.nats.server = nc.info.version;
      await readBuckets(nc, prefix, status);
    } catch (err) {
      status.nats.error = (err as Error).message;
    } finally {
      await nc?.close().catch(() => undefined);
    }

    const health = [
      status.nats.ok
        ? `NATS ok (server ${status.nats.server ?? "?"}, round trip ${ms(status.nats.rttMs ?? 0)})`
        : `NATS unreachable at ${url}: ${status.nats.error}`,
      status.storage.ok
        ? `storage ${status.storage.backend} ok (${ms(status.storage.ms ?? 0)})`
        : `storage ${status.storage.backend} failing: ${status.storage.error}`,
    ].join(", ");
    const lines = [
      `cluster ${prefix} at ${url}: ${health}`,
      `${status.nodes.length} node${status.nodes.length === 1 ? "" : "s"}, ${status.sessions} session${status.sessions === 1 ? "" : "s"}` +
        (status.staleSessions > 0 ? ` (and ${status.staleSessions} of nodes gone, being removed)` : ""),
      ...status.nodes.map(
        (n) =>
          `  ${n.name}  ${n.sessions} session${n.sessions === 1 ? "" : "s"}  heartbeat ${ms(n.heartbeatAgeMs)} ago  since ${n.startedAt}  pid ${n.pid}`,
      ),
    ];
    return { message: lines.join("\n"), data: status };
  },
});

async function readBuckets(nc: NatsConnection, prefix: string, status: ClusterStatus): Promise<void> {
  const names = clusterNames(prefix);
  const kvm = new Kvm(nc);
  const exists = new Set<string>();
  for await (const b of kvm.list()) exists.add(b.bucket);
  const counts = new Map<string, number>();
  if (exists.has(names.sessionsBucket)) {
    const kv = await kvm.open(names.sessionsBucket);
    for await (const key of await kv.keys()) {
      const e = await kv.get(key);
      const entry = e?.operation === "PUT" ? decodeJson<SessionEntry>(e.value) : undefined;
      if (entry) counts.set(entry.node, (counts.get(entry.node) ?? 0) + 1);
    }
  }
  if (exists.has(names.nodesBucket)) {
    const kv = await kvm.open(names.nodesBucket);
    const now = Date.now();
    for await (const key of await kv.keys()) {
      const e = await kv.get(key);
      const info = e?.operation === "PUT" ? decodeJson<NodeInfo>(e.value) : undefined;
      if (!info) continue;
      status.nodes.push({
        name: info.node,
        sessions: counts.get(info.node) ?? 0,
        heartbeatAgeMs: Math.max(0, now - info.at),
        startedAt: new Date(info.startedAt).toISOString(),
        pid: info.pid,
        domain: info.domain,
      });
    }
  }
  status.nodes.sort((a, b) => a.name.localeCompare(b.name));
  const live = new Set(status.nodes.map((n) => n.name));
  for (const [node, n] of counts) {
    if (live.has(node)) status.sessions += n;
    else status.staleSessions += n;
  }
}
