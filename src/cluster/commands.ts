/**
 * `cluster status`: the nodes of a cluster with their figures (sessions, messages per
 * minute), as each node's heartbeat in the nodes bucket carries them, what the other buckets
 * hold of nodes that are gone, and the health of NATS and of the storage the command was
 * given. Defined once, offered by the CLI, the HTTP API and the console like every command;
 * the console's dashboard shows the cluster's figures from it (`quick`: the heartbeats only).
 */
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, headers as natsHeaders, RequestError } from "@nats-io/transport-node";
import { z } from "zod";
import { auditCommand } from "../commands/audit.js";
import { flagInput } from "../commands/input.js";
import { CommandError, defineCommand } from "../core/commands.js";
import { decodeJson, encodeJson, type NodeInfo, type SessionEntry } from "./entry.js";
import { clusterNames, connectNats, type DrainReport, heartbeatInterval } from "./node.js";
import type { OwnerClaim } from "./owners.js";

export interface ClusterStatus {
  prefix: string;
  nats: { url: string; ok: boolean; error?: string; server?: string; rttMs?: number };
  storage: { backend: string; ok: boolean; error?: string; ms?: number };
  nodes: {
    name: string;
    /** Its bound sessions, as its last heartbeat said. */
    sessions: number;
    /** Messages its clients sent in the last minute, as its last heartbeat said; absent until measured. */
    messagesPerMinute?: number;
    /** Milliseconds since its last heartbeat, by this machine's clock. */
    heartbeatAgeMs: number;
    /** It missed two heartbeats: its figures are its last, it may be dying (gone after the node timeout). */
    answering: boolean;
    startedAt: string;
    pid: number;
    domain: string;
    /** Where its clients connect (host:port). */
    advertise?: string;
    /** Draining: taking no new connections, about to leave. */
    draining: boolean;
    /** What it owns, by kind (`muc`: group chat rooms, `s2s`: federation links); absent with `quick`. */
    owns?: Record<string, number>;
  }[];
  /** The nodes' sessions together. */
  sessions: number;
  /** The nodes' messages per minute together (of those that measured it). */
  messagesPerMinute: number;
  /** Directory entries of nodes that are not alive (removed by the live nodes within the node timeout); absent with `quick`. */
  staleSessions?: number;
  /** Claims of nodes that are gone (or restarted): a live node takes each over when it is next used; absent with `quick`. */
  orphanedClaims?: number;
}

const clusterStatusOutput: z.ZodType<ClusterStatus> = z.object({
  prefix: z.string().describe("the cluster's name prefix (cluster.prefix): its NATS subjects and buckets"),
  nats: z.object({
    url: z.string(),
    ok: z.boolean().describe("connected and answered"),
    error: z.string().optional().describe("why not, when not ok"),
    server: z.string().optional().describe("the NATS server's version"),
    rttMs: z.number().min(0).optional().describe("round trip to NATS, in milliseconds"),
  }),
  storage: z.object({
    backend: z.string().describe("sqlite or postgres"),
    ok: z.boolean().describe("a query on the storage the command was given succeeded"),
    error: z.string().optional().describe("why not, when not ok"),
    ms: z.number().min(0).optional().describe("how long that query took, in milliseconds"),
  }),
  nodes: z
    .array(
      z.object({
        name: z.string().describe("the node's name"),
        sessions: z.number().int().min(0).describe("its bound sessions, as its last heartbeat said"),
        messagesPerMinute: z
          .number()
          .min(0)
          .optional()
          .describe(
            "messages its clients sent in the last minute, as its last heartbeat said; absent until measured",
          ),
        heartbeatAgeMs: z
          .number()
          .min(0)
          .describe("milliseconds since its last heartbeat, by this machine's clock"),
        answering: z
          .boolean()
          .describe(
            "false when it missed two heartbeats: its figures are its last, and it leaves the cluster if it stays silent for the node timeout",
          ),
        startedAt: z.string().describe("when the node started, ISO 8601 (UTC)"),
        pid: z.number().int(),
        domain: z.string().describe("the domain it serves"),
        advertise: z.string().optional().describe("where its clients connect (host:port), when configured"),
        draining: z.boolean().describe("taking no new connections, about to leave (`cluster drain`)"),
        owns: z
          .record(z.string(), z.number().int().min(0))
          .optional()
          .describe(
            "what the node owns, by kind (muc: group chat rooms, s2s: outbound federation links by remote domain), from the cluster's owners bucket; absent with quick",
          ),
      }),
    )
    .describe("the nodes with a live heartbeat entry, by name"),
  sessions: z.number().int().min(0).describe("sessions of those nodes"),
  messagesPerMinute: z
    .number()
    .min(0)
    .describe("messages per minute of those nodes together (of those that measured it)"),
  staleSessions: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      "directory entries of nodes that are gone, which the live nodes remove within the node timeout; absent with quick",
    ),
  orphanedClaims: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      "ownership claims of nodes that are gone or restarted; a live node takes each over when it is next used; absent with quick",
    ),
});

const perMinute = (n: number) => `${Math.round(n)} message${Math.round(n) === 1 ? "" : "s"}/min`;

const ms = (n: number) => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`);

export const clusterStatusCommand = defineCommand({
  name: ["cluster", "status"],
  description:
    "The cluster's nodes with their sessions and messages per minute, with the health of NATS and of the storage",
  args: [
    { name: "cluster", description: "the cluster's NATS URL (default: cluster.url)" },
    {
      name: "quick",
      description:
        "the nodes' heartbeats only (their figures), without counting the entries and claims of nodes that are gone, which reads every entry",
      flag: true,
    },
  ],
  input: z.object({
    cluster: z
      .string()
      .regex(/^nats:\/\//, "expected nats://host:port")
      .optional(),
    quick: flagInput,
  }),
  output: clusterStatusOutput,
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
      messagesPerMinute: 0,
      ...(input.quick ? {} : { staleSessions: 0, orphanedClaims: 0 }),
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
      await readBuckets(nc, prefix, status, {
        quick: input.quick,
        heartbeatMs: heartbeatInterval(ctx.config.cluster.nodeTimeoutSeconds),
      });
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
      `${status.nodes.length} node${status.nodes.length === 1 ? "" : "s"}, ${status.sessions} session${status.sessions === 1 ? "" : "s"}, ${perMinute(status.messagesPerMinute)}` +
        ((status.staleSessions ?? 0) > 0
          ? ` (and ${status.staleSessions} sessions of nodes gone, being removed)`
          : "") +
        ((status.orphanedClaims ?? 0) > 0
          ? `; ${status.orphanedClaims} claim${status.orphanedClaims === 1 ? "" : "s"} of nodes gone, taken over when next used`
          : ""),
      ...status.nodes.map(
        (n) =>
          `  ${n.name}  ${n.sessions} session${n.sessions === 1 ? "" : "s"}` +
          (n.messagesPerMinute !== undefined ? `  ${perMinute(n.messagesPerMinute)}` : "") +
          `${ownsText(n.owns ?? {})}  heartbeat ${ms(n.heartbeatAgeMs)} ago` +
          (n.answering ? "" : " (NOT ANSWERING)") +
          `  since ${n.startedAt}  pid ${n.pid}` +
          (n.advertise !== undefined ? `  clients at ${n.advertise}` : "") +
          (n.draining ? "  DRAINING" : ""),
      ),
    ];
    return { message: lines.join("\n"), data: status };
  },
});

/** What a kind of claim is called in the status text. */
const OWNED_NAMES: Record<string, [one: string, many: string]> = {
  muc: ["room", "rooms"],
  s2s: ["federation link", "federation links"],
};

function ownsText(owns: Record<string, number>): string {
  return Object.entries(owns)
    .map(([kind, n]) => {
      const [one, many] = OWNED_NAMES[kind] ?? [`${kind} claim`, `${kind} claims`];
      return `  owns ${n} ${n === 1 ? one : many}`;
    })
    .join("");
}

/**
 * A bucket's keys, each once: the listing follows the bucket's stream, so a key written again
 * while it runs (a node's heartbeat, every second) can come twice.
 */
async function distinctKeys(kv: { keys(): Promise<AsyncIterable<string>> }): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const key of await kv.keys()) keys.add(key);
  return keys;
}

/** A node whose last heartbeat is older than this many of its intervals missed two: it is not answering. */
const LATE_AFTER_BEATS = 3;

async function readBuckets(
  nc: NatsConnection,
  prefix: string,
  status: ClusterStatus,
  opts: { quick: boolean; heartbeatMs: number },
): Promise<void> {
  const names = clusterNames(prefix);
  const kvm = new Kvm(nc);
  const exists = new Set<string>();
  for await (const b of kvm.list()) exists.add(b.bucket);
  // The nodes and their figures: each node's own heartbeat.
  const incarnations = new Map<string, string>();
  if (exists.has(names.nodesBucket)) {
    const kv = await kvm.open(names.nodesBucket);
    const now = Date.now();
    for (const key of await distinctKeys(kv)) {
      const e = await kv.get(key);
      const info = e?.operation === "PUT" ? decodeJson<NodeInfo>(e.value) : undefined;
      if (!info) continue;
      const age = Math.max(0, now - info.at);
      status.nodes.push({
        name: info.node,
        sessions: info.sessions,
        ...(info.messagesPerMinute !== undefined ? { messagesPerMinute: info.messagesPerMinute } : {}),
        heartbeatAgeMs: age,
        answering: age <= LATE_AFTER_BEATS * (info.heartbeatMs ?? opts.heartbeatMs),
        startedAt: new Date(info.startedAt).toISOString(),
        pid: info.pid,
        domain: info.domain,
        ...(info.advertise !== undefined ? { advertise: info.advertise } : {}),
        draining: info.draining === true,
        ...(opts.quick ? {} : { owns: {} }),
      });
      incarnations.set(info.node, info.inc);
    }
  }
  status.nodes.sort((a, b) => a.name.localeCompare(b.name));
  status.sessions = status.nodes.reduce((n, node) => n + node.sessions, 0);
  status.messagesPerMinute =
    Math.round(status.nodes.reduce((n, node) => n + (node.messagesPerMinute ?? 0), 0) * 10) / 10;
  if (opts.quick) return;

  // What the other buckets still hold of nodes that are gone: every entry is read.
  if (exists.has(names.sessionsBucket)) {
    const kv = await kvm.open(names.sessionsBucket);
    let stale = 0;
    for (const key of await distinctKeys(kv)) {
      const e = await kv.get(key);
      const entry = e?.operation === "PUT" ? decodeJson<SessionEntry>(e.value) : undefined;
      if (entry && !incarnations.has(entry.node)) stale++;
    }
    status.staleSessions = stale;
  }
  if (exists.has(names.ownersBucket)) {
    const kv = await kvm.open(names.ownersBucket);
    const byName = new Map(status.nodes.map((n) => [n.name, n]));
    let orphaned = 0;
    for (const key of await distinctKeys(kv)) {
      const e = await kv.get(key);
      const claim = e?.operation === "PUT" ? decodeJson<OwnerClaim>(e.value) : undefined;
      if (!claim) continue;
      const node = byName.get(claim.node);
      // A claim made by an earlier run of a node that has since restarted is not its own.
      if (!node?.owns || incarnations.get(claim.node) !== claim.inc) {
        orphaned++;
        continue;
      }
      const kind = key.slice(0, key.indexOf("."));
      node.owns[kind] = (node.owns[kind] ?? 0) + 1;
    }
    status.orphanedClaims = orphaned;
  }
}

/**
 * `cluster drain`: asks a running node (over NATS, so the CLI, the HTTP API and the console
 * reach any node) to stop taking connections, send its clients to another live node
 * (`see-other-host`, or `system-shutdown` when it is the last), keep the sessions with
 * resumable stream management for `grace` seconds so their clients resume them elsewhere,
 * and leave the cluster. `wait`: returns once the node has left.
 */
const clusterDrainOutput: z.ZodType<DrainReport & { left: boolean }> = z.object({
  node: z.string().describe("the node drained"),
  redirectedTo: z.string().optional().describe("the node its clients were sent to; absent: none was left"),
  address: z.string().optional().describe("where they were sent (host:port), with redirectedTo"),
  condition: z
    .enum(["see-other-host", "system-shutdown"])
    .describe(
      "the stream error its clients got: see-other-host, or system-shutdown when it was the last node",
    ),
  streams: z.number().int().min(0).describe("client streams closed"),
  awaitingResumption: z
    .number()
    .int()
    .min(0)
    .describe("sessions kept for their clients to resume on another node (stream management)"),
  graceSeconds: z.number().min(0).describe("how long those sessions are kept"),
  left: z.boolean().describe("the node has left the cluster (only waited for with --wait; false without)"),
});

export const clusterDrainCommand = defineCommand({
  name: ["cluster", "drain"],
  description:
    "Drain a node: no new connections, its clients sent to another node (see-other-host), then it leaves the cluster",
  args: [
    {
      name: "node",
      description: "the node to drain (default: cluster.node, the node this runs on)",
      positional: true,
    },
    { name: "cluster", description: "the cluster's NATS URL (default: cluster.url)" },
    {
      name: "grace",
      description:
        "seconds the node keeps sessions for their clients to resume elsewhere (default: cluster.drainGraceSeconds)",
    },
    { name: "wait", description: "return only once the node has left the cluster", flag: true },
  ],
  input: z.object({
    node: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, "a node name")
      .optional(),
    cluster: z
      .string()
      .regex(/^nats:\/\//, "expected nats://host:port")
      .optional(),
    grace: z.coerce.number().min(0).max(3600).optional(),
    wait: z.boolean().optional(),
  }),
  output: clusterDrainOutput,
  mutates: true,
  async run(ctx, input) {
    const url = input.cluster ?? ctx.config.cluster.url;
    if (url === undefined)
      throw new CommandError("no cluster given: --cluster nats://HOST:PORT (or cluster.url)");
    const node = input.node ?? ctx.config.cluster.node;
    if (node === undefined) throw new CommandError("which node? give its name (cluster drain NAME)");
    const grace = input.grace ?? ctx.config.cluster.drainGraceSeconds;
    const names = clusterNames(ctx.config.cluster.prefix);
    let nc: NatsConnection | undefined;
    try {
      nc = await connectNats(url, "switchboard cluster drain", { reconnect: false });
      const h = natsHeaders();
      h.set("op", "drain");
      h.set("grace", String(grace));
      let reply: Uint8Array;
      try {
        reply = (await nc.request(names.nodeSubject(node), encodeJson({}), { timeout: 30_000, headers: h }))
          .data;
      } catch (err) {
        if (err instanceof RequestError && err.isNoResponders())
          throw new CommandError(`no node called ${node} is running in the cluster`, 404);
        throw err;
      }
      const report = decodeJson<DrainReport & { error?: string }>(reply);
      if (!report || report.error !== undefined)
        throw new CommandError(`${node} could not drain: ${report?.error ?? "no answer"}`, 409);
      await auditCommand(ctx, "cluster.drain", `node:${node}`, {
        after: { graceSeconds: report.graceSeconds, condition: report.condition, streams: report.streams },
      });
      let left = false;
      if (input.wait) {
        const deadline = Date.now() + (grace + 15) * 1000;
        const kv = await new Kvm(nc).open(names.nodesBucket);
        while (Date.now() < deadline) {
          const e = await kv.get(node);
          if (e?.operation !== "PUT") {
            left = true;
            break;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
        if (!left)
          throw new CommandError(`${node} sent its clients away but has not left the cluster yet`, 409);
      }
      const where =
        report.condition === "see-other-host"
          ? `sent to ${report.redirectedTo} (${report.address})`
          : "told system-shutdown (no other node)";
      const message =
        `${node} drains: ${report.streams} stream${report.streams === 1 ? "" : "s"} closed, clients ${where}; ` +
        `${report.awaitingResumption} session${report.awaitingResumption === 1 ? "" : "s"} kept ${report.graceSeconds} s for resumption elsewhere` +
        (input.wait ? "; it has left the cluster" : "");
      return { message, data: { ...report, left } };
    } finally {
      await nc?.close().catch(() => undefined);
    }
  },
});
