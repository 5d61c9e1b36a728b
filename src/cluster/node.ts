/**
 * A Switchboard node in a cluster: its NATS connection, its heartbeat, the cluster session
 * directory's NATS side, and the delivery of stanzas to sessions on other nodes.
 *
 * Subjects and buckets (PREFIX is `cluster.prefix`):
 * - `PREFIX.node.NAME`: stanzas (a request each, answered "ok" or "gone") and close orders
 *   for sessions on node NAME, and the replies to IQ requests node NAME sent (their ids name
 *   the node; the client answering may be bound anywhere). One connection per node publishes
 *   everything, so stanzas from one node to another keep their order; requests between
 *   modules of two nodes (NodeBus: `call`, e.g. a stream management handover); and the
 *   order to drain (`cluster drain`);
 * - `PREFIX.directory`: binds, presence changes and unbinds (DirectoryDelta, JSON);
 * - `PREFIX.logins`: every node's failed and successful logins, counted by every node's
 *   login guard (a guesser gets one budget for the whole cluster);
 * - KV `PREFIX_sessions`: full JID → SessionEntry, the directory's durable copy;
 * - KV `PREFIX_nodes`: node name → NodeInfo, rewritten every heartbeat; entries expire after
 *   the node timeout, and a node not heard from for that long is dead: its sessions leave
 *   every node's view, and the first live node by name deletes them from the bucket;
 * - KV `PREFIX_owners`: what one node owns at a time (a group chat room) → its node and
 *   incarnation (owners.ts); a dead node's claims are taken over by the next node to need them.
 */
import { randomBytes } from "node:crypto";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, headers, type Msg, type NatsConnection, RequestError } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ConfigError } from "../core/config.js";
import { StreamError, type StreamErrorCondition } from "../core/errors.js";
import { tryParseJid } from "../core/jid.js";
import type { LoginGuard, LoginOutcome } from "../core/login-guard.js";
import { MessageRate } from "../core/message-rate.js";
import type { MetricRegistry } from "../core/metrics.js";
import type { NodeBus, NodeMessage, TakeoverHandler } from "../core/nodes.js";
import type { Router } from "../core/router.js";
import type { XmlElement } from "../core/xml/element.js";
import { parseElement } from "../core/xml/fragment.js";
import type { ClusterConfig } from "./config.js";
import { type ClusterLink, ClusterSessionDirectory, type RemoteSession } from "./directory.js";
import { type DirectoryDelta, decodeJson, encodeJson, type NodeInfo, type SessionEntry } from "./entry.js";
import { type Liveness, OwnerRegistry } from "./owners.js";

export interface ClusterNames {
  sessionsBucket: string;
  nodesBucket: string;
  ownersBucket: string;
  directorySubject: string;
  loginsSubject: string;
  nodeSubject(node: string): string;
}

export function clusterNames(prefix: string): ClusterNames {
  return {
    sessionsBucket: `${prefix}_sessions`,
    nodesBucket: `${prefix}_nodes`,
    ownersBucket: `${prefix}_owners`,
    directorySubject: `${prefix}.directory`,
    loginsSubject: `${prefix}.logins`,
    nodeSubject: (node) => `${prefix}.node.${node}`,
  };
}

/** Every KV bucket a cluster with this prefix makes (what removing a cluster removes). */
export function clusterBuckets(prefix: string): string[] {
  const names = clusterNames(prefix);
  return [names.sessionsBucket, names.nodesBucket, names.ownersBucket];
}

/** How often a node with this node timeout writes its heartbeat: four times per timeout. */
export function heartbeatInterval(nodeTimeoutSeconds: number): number {
  return Math.max(200, Math.floor((nodeTimeoutSeconds * 1000) / 4));
}

/** Connects to the cluster's NATS servers (a comma-separated list of nats:// URLs). */
export function connectNats(
  url: string,
  name: string,
  opts: { reconnect: boolean },
): Promise<NatsConnection> {
  return connect({
    servers: url.split(","),
    name,
    timeout: 5_000,
    // A node keeps trying for as long as it runs; a command gives up at once.
    maxReconnectAttempts: opts.reconnect ? -1 : 0,
    reconnectTimeWait: 500,
  });
}

function isWrongSequence(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence/i.test(err.message);
}

/** Opens a bucket, creating it on first use. */
async function bucket(kvm: Kvm, name: string, opts: { ttl?: number }, log: Logger): Promise<KV> {
  try {
    return await kvm.create(name, { history: 1, ...opts });
  } catch (err) {
    // Made by a node with other settings (another node timeout): use it as it is.
    log.warn({ err, bucket: name }, "opening the existing cluster bucket with its own settings");
    return kvm.open(name);
  }
}

export interface ClusterNodeOptions {
  config: ClusterConfig & { url: string };
  domain: string;
  maxResourcesPerAccount: number;
  /** Where clients reach this node (host:port), for the see-other-host of a draining node. */
  advertise: string;
  log: Logger;
}

/** What the server does when its node drains: take no more connections, close every stream with `error`. */
export type DrainStreams = (error: StreamError) => Promise<{ streams: number }>;

/** What a drain did, as `cluster drain` reports it. */
export interface DrainReport {
  node: string;
  /** The node clients were sent to (see-other-host), or none (system-shutdown). */
  redirectedTo?: string;
  address?: string;
  condition: "see-other-host" | "system-shutdown";
  /** Client streams closed. */
  streams: number;
  /** Sessions kept for their clients to resume on another node (stream management). */
  awaitingResumption: number;
  graceSeconds: number;
}

export class ClusterNode implements ClusterLink, NodeBus, Liveness {
  readonly node: string;
  readonly inc = randomBytes(6).toString("hex");
  readonly directory: ClusterSessionDirectory;
  readonly stats = {
    stanzasOut: 0,
    stanzasIn: 0,
    undeliverable: 0,
    redelivered: 0,
    deliveryTimeouts: 0,
    nodesLost: 0,
    responsesRelayed: 0,
    calls: 0,
  };
  /** Handlers of other nodes' requests, by kind (NodeBus). */
  private readonly served = new Map<string, (body: NodeMessage) => NodeMessage | Promise<NodeMessage>>();
  private drainStreams: DrainStreams | undefined;
  private draining: Promise<DrainReport> | undefined;
  private drainStarted = false;
  /** Resolves once a drained node has left the cluster. */
  left: Promise<void> | undefined;
  private readonly names: ClusterNames;
  private readonly timeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly deliveryTimeoutMs: number;
  private readonly log: Logger;
  private router: Router | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Removes what start() registered (metrics). */
  private readonly cleanups: (() => void)[] = [];
  /** Other nodes by name: when their heartbeat was last seen here, and their incarnation. */
  private readonly lastSeen = new Map<string, { at: number; inc: string; info: NodeInfo }>();
  private startedAt = Date.now();
  /** Entries of nodes not heard from since this instant (start, reconnection) are kept a node timeout. */
  private graceFrom = Date.now();
  private lastHeartbeat = 0;
  private messageRate: MessageRate | undefined;
  private readonly redelivered = new WeakSet<XmlElement>();
  private stopped = false;
  private nodesWatch: { stop(): void } | undefined;
  private resyncing: Promise<void> | undefined;
  private readonly owners: OwnerRegistry;
  private readonly goneListeners = new Set<(node: string) => void>();
  private readonly lostListeners = new Set<(scope: string, name: string) => void>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly sessionsKv: KV,
    private readonly nodesKv: KV,
    ownersKv: KV,
    private readonly opts: ClusterNodeOptions,
    node: string,
  ) {
    this.node = node;
    this.names = clusterNames(opts.config.prefix);
    this.timeoutMs = opts.config.nodeTimeoutSeconds * 1000;
    this.heartbeatMs = heartbeatInterval(opts.config.nodeTimeoutSeconds);
    this.deliveryTimeoutMs = opts.config.deliveryTimeoutSeconds * 1000;
    this.log = opts.log.child({ part: "cluster", node });
    this.directory = new ClusterSessionDirectory(opts.domain, opts.maxResourcesPerAccount);
    this.directory.connect(this);
    this.owners = new OwnerRegistry(ownersKv, this, (err, what) => this.onError(err, what));
  }

  /** Connects to NATS and opens the buckets; `start` then takes part in the cluster. */
  static async join(opts: ClusterNodeOptions, node: string): Promise<ClusterNode> {
    const nc = await connectNats(opts.config.url, `switchboard ${node}`, { reconnect: true });
    try {
      const kvm = new Kvm(nc);
      const names = clusterNames(opts.config.prefix);
      const sessions = await bucket(kvm, names.sessionsBucket, {}, opts.log);
      const nodes = await bucket(
        kvm,
        names.nodesBucket,
        { ttl: opts.config.nodeTimeoutSeconds * 1000 },
        opts.log,
      );
      const owners = await bucket(kvm, names.ownersBucket, {}, opts.log);
      return new ClusterNode(nc, sessions, nodes, owners, opts, node);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw err;
    }
  }

  get connected(): boolean {
    return !this.nc.isClosed() && this.nc.info !== undefined && !this.disconnected;
  }
  private disconnected = false;

  /** Nodes alive as far as this node knows, itself included. */
  liveNodes(): string[] {
    return [this.node, ...this.lastSeen.keys()].sort();
  }

  /**
   * Takes part in the cluster. `messagesReceived` is the server's count of messages from its
   * clients: the heartbeat carries their rate, so any node's `cluster status` and console
   * show every node's.
   */
  async start(router: Router, metrics: MetricRegistry, messagesReceived?: () => number): Promise<void> {
    this.router = router;
    if (messagesReceived) {
      const rate = new MessageRate(messagesReceived, () => Date.now());
      rate.start();
      this.messageRate = rate;
      this.cleanups.push(() => rate.stop());
    }
    this.cleanups.push(router.relayResponses(this.node, (node, reply) => this.relayResponse(node, reply)));
    await this.refuseDuplicateName();
    this.nc.subscribe(this.names.directorySubject, {
      callback: (err, msg) => {
        if (!err) this.onDelta(msg);
      },
    });
    this.nc.subscribe(this.names.nodeSubject(this.node), {
      callback: (err, msg) => {
        if (!err) this.onNodeMessage(msg);
      },
    });
    // The subscriptions are in place before the snapshot is read: nothing falls between.
    await this.nc.flush();
    this.startedAt = Date.now();
    this.graceFrom = this.startedAt;
    await this.heartbeat();
    await this.watchNodes();
    await this.loadSnapshot();
    // What this node's previous run owned when it was killed: settled now, not when next used.
    this.owners
      .releaseClaims((claim) => claim.node === this.node && claim.inc !== this.inc)
      .catch((err) => this.onError(err, "settling the claims of this node's previous run"));
    this.every(this.heartbeatMs, () => this.heartbeat());
    this.every(Math.max(100, Math.floor(this.heartbeatMs / 2)), () => this.checkNodes());
    this.watchConnection();
    this.declareMetrics(metrics);
    this.log.info(
      { nodes: this.liveNodes(), remoteSessions: this.directory.remoteSessions },
      "joined the cluster",
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const undo of this.cleanups) undo();
    this.nodesWatch?.stop();
    await this.directory.flush();
    // What this node owned is free at once for the next node that needs it.
    await this.owners.disownAll().catch(() => undefined);
    await this.nodesKv.delete(this.node).catch(() => undefined);
    await this.nc.drain().catch(() => undefined);
  }

  private every(ms: number, fn: () => void | Promise<void>): void {
    const t = setInterval(() => {
      const r = fn();
      if (r) r.catch((err) => this.onError(err, "cluster timer"));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  /** Two live nodes with one name would take each other's stanzas: a name whose heartbeat still beats is refused. */
  private async refuseDuplicateName(): Promise<void> {
    const first = await this.nodesKv.get(this.node);
    if (first?.operation !== "PUT") return;
    const info = decodeJson<NodeInfo>(first.value);
    if (info?.inc === this.inc) return;
    // The entry may be the last heartbeat of this node's previous run: it stops changing.
    const deadline = Date.now() + this.timeoutMs + this.heartbeatMs;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, this.heartbeatMs));
      const now = await this.nodesKv.get(this.node);
      if (now?.operation !== "PUT") return;
      if (now.revision !== first.revision) {
        throw new ConfigError(
          `a running node is already called ${this.node} in the cluster: give each node its own name (--node)`,
        );
      }
    }
  }

  // ---- heartbeat and failure detection

  private async heartbeat(): Promise<void> {
    if (this.stopped) return;
    const perMinute = this.messageRate?.perMinute();
    const info: NodeInfo = {
      node: this.node,
      inc: this.inc,
      startedAt: this.startedAt,
      at: Date.now(),
      heartbeatMs: this.heartbeatMs,
      sessions: this.directory.count,
      ...(perMinute !== undefined ? { messagesPerMinute: Math.round(perMinute * 10) / 10 } : {}),
      pid: process.pid,
      domain: this.opts.domain,
      advertise: this.opts.advertise,
      ...(this.drainStarted ? { draining: true } : {}),
    };
    const before = this.lastHeartbeat;
    await this.nodesKv.put(this.node, encodeJson(info));
    const now = Date.now();
    this.lastHeartbeat = now;
    // Silent for a node timeout: the others have taken this node for dead and forgotten its sessions.
    if (before !== 0 && now - before > this.timeoutMs) this.resync("heartbeats were interrupted");
  }

  private async watchNodes(): Promise<void> {
    this.nodesWatch?.stop();
    const watch = await this.nodesKv.watch();
    this.nodesWatch = watch;
    (async () => {
      for await (const e of watch) {
        if (e.key === this.node) continue;
        if (e.operation === "PUT") {
          const info = decodeJson<NodeInfo>(e.value);
          if (!info) continue;
          const prev = this.lastSeen.get(e.key);
          // Restarted under the same name: the sessions of its previous run are gone.
          if (prev && prev.inc !== info.inc) this.forgetNode(e.key, "restarted", info.inc);
          this.lastSeen.set(e.key, { at: Date.now(), inc: info.inc, info });
        } else {
          this.lastSeen.delete(e.key);
          this.forgetNode(e.key, "left");
        }
      }
    })().catch((err) => {
      if (!this.stopped) this.onError(err, "watching the cluster's nodes");
    });
  }

  private checkNodes(): void {
    // Cut off from NATS, this node cannot tell who is alive: it judges again once reconnected.
    if (this.disconnected) return;
    const now = Date.now();
    for (const [node, seen] of this.lastSeen) {
      if (now - seen.at > this.timeoutMs) {
        this.lastSeen.delete(node);
        this.forgetNode(node, "silent", undefined, true);
      }
    }
    // Entries of nodes never heard from since this node started (read from the bucket).
    if (now - this.graceFrom > this.timeoutMs) {
      for (const node of this.directory.remoteNodes()) {
        if (node !== this.node && !this.lastSeen.has(node)) this.forgetNode(node, "silent", undefined, true);
      }
    }
    this.directory.pruneTombstones(now);
  }

  private forgetNode(node: string, why: string, keepInc?: string, dead = false): void {
    const gone = this.directory.dropNode(node, keepInc);
    if (dead) this.stats.nodesLost++;
    if (gone.length > 0 || dead)
      this.log.warn({ peer: node, why, sessions: gone.length }, "node gone from the cluster");
    // One node cleans the buckets: the first live one by name.
    if (dead && this.liveNodes()[0] === this.node) {
      this.deleteEntriesOf(node).catch((err) => this.onError(err, "removing a dead node's sessions"));
      this.owners
        .releaseClaims((claim) => claim.node === node && !this.lastSeen.has(node))
        .catch((err) => this.onError(err, "settling a dead node's claims"));
    }
    // A node NATS found no listener for may be back in a moment; the others have left.
    if (why === "unreachable") return;
    this.owners.forgetNode(node);
    for (const listener of [...this.goneListeners]) {
      try {
        listener(node);
      } catch (err) {
        this.onError(err, "telling a module a node left");
      }
    }
  }

  /** Deletes a dead node's entries from the bucket (read there: this node's view may have dropped them already). */
  private async deleteEntriesOf(node: string): Promise<void> {
    const keys: string[] = [];
    for await (const k of await this.sessionsKv.keys()) keys.push(k);
    for (const key of keys) {
      const e = await this.sessionsKv.get(key);
      if (e?.operation !== "PUT") continue;
      const entry = decodeJson<SessionEntry>(e.value);
      if (entry?.node !== node || this.lastSeen.has(node)) continue;
      await this.sessionsKv.delete(key, { previousSeq: e.revision }).catch((err) => {
        if (!isWrongSequence(err)) throw err;
      });
    }
  }

  private watchConnection(): void {
    (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === "disconnect") {
          this.disconnected = true;
          this.log.warn({ server: s.server }, "lost the connection to NATS; reconnecting");
        } else if (s.type === "reconnect") {
          this.disconnected = false;
          this.log.info({ server: s.server }, "reconnected to NATS");
          // The others get a node timeout from now to be heard from again.
          const now = Date.now();
          this.graceFrom = now;
          for (const seen of this.lastSeen.values()) seen.at = now;
          this.watchNodes().catch((err) => this.onError(err, "watching the cluster's nodes again"));
          this.resync("reconnected to NATS");
        }
      }
    })().catch(() => undefined);
  }

  /**
   * After an outage: read the directory again (changes were missed) and make this node's
   * sessions known again (the others may have taken the node for dead).
   */
  private resync(why: string): void {
    if (this.resyncing || this.stopped) return;
    this.log.info({ why }, "resynchronising the cluster directory");
    this.resyncing = (async () => {
      await this.loadSnapshot();
      for (const { session, key, entry } of this.directory.heldEntries()) {
        if (session.closed) continue;
        const e = await this.sessionsKv.get(key);
        const current = e?.operation === "PUT" ? decodeJson<SessionEntry>(e.value) : undefined;
        if (current && current.node === this.node && current.session === entry.session) {
          this.announce({ op: "bind", entry });
          continue;
        }
        if (current && e && (current.bind || e.revision) > entry.bind) {
          session.close(new StreamError("conflict", "Replaced by new connection"));
          continue;
        }
        const revision = await this.claim(key, entry);
        this.directory.reclaimed(session, revision);
        this.announce({ op: "bind", entry: { ...entry, bind: revision } });
      }
      // Taken for dead meanwhile, this node may have lost what it owned to another.
      for (const [scope, name] of await this.owners.verify()) {
        this.log.warn({ scope, name }, "another node took over what this node owned while it was cut off");
        for (const listener of [...this.lostListeners]) listener(scope!, name!);
      }
    })()
      .catch((err) => this.onError(err, "resynchronising the cluster directory"))
      .finally(() => {
        this.resyncing = undefined;
      });
  }

  private async loadSnapshot(): Promise<void> {
    const keys: string[] = [];
    for await (const k of await this.sessionsKv.keys()) keys.push(k);
    for (let i = 0; i < keys.length; i += 64) {
      await Promise.all(
        keys.slice(i, i + 64).map(async (key) => {
          const e = await this.sessionsKv.get(key);
          if (e?.operation !== "PUT") return;
          const entry = decodeJson<SessionEntry>(e.value);
          if (!entry) return;
          // Written before its first update: the claim's own revision is the bind.
          if (!entry.bind) entry.bind = e.revision;
          if (entry.node === this.node) {
            // Left by this node's previous run (killed): those sessions are gone.
            if (entry.inc !== this.inc)
              await this.sessionsKv.delete(key, { previousSeq: e.revision }).catch(() => undefined);
            return;
          }
          this.directory.apply(entry);
        }),
      );
    }
  }

  // ---- the directory's link

  async claim(key: string, entry: SessionEntry): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = await this.sessionsKv.get(key);
      try {
        if (e && e.operation === "PUT")
          return await this.sessionsKv.update(key, encodeJson(entry), e.revision);
        return await this.sessionsKv.create(key, encodeJson(entry));
      } catch (err) {
        if (!isWrongSequence(err)) throw err;
      }
    }
    throw new Error("the directory entry kept changing under concurrent binds");
  }

  async write(key: string, entry: SessionEntry, revision: number): Promise<number | undefined> {
    try {
      return await this.sessionsKv.update(key, encodeJson(entry), revision);
    } catch (err) {
      if (isWrongSequence(err)) return undefined;
      throw err;
    }
  }

  async release(key: string, revision: number): Promise<void> {
    try {
      await this.sessionsKv.delete(key, { previousSeq: revision });
    } catch (err) {
      if (!isWrongSequence(err)) throw err;
    }
  }

  announce(delta: DirectoryDelta): void {
    if (this.stopped && this.nc.isClosed()) return;
    try {
      this.nc.publish(this.names.directorySubject, encodeJson(delta));
    } catch (err) {
      this.onError(err, "announcing a directory change");
    }
  }

  deliver(target: RemoteSession, stanza: XmlElement): void {
    const h = headers();
    h.set("op", "stanza");
    h.set("jid", target.jid.toString());
    h.set("session", target.id);
    this.stats.stanzasOut++;
    let request: Promise<Msg>;
    try {
      request = this.nc.request(this.names.nodeSubject(target.node), stanza.toString(), {
        timeout: this.deliveryTimeoutMs,
        headers: h,
      });
    } catch (err) {
      this.onError(err, "sending a stanza to another node");
      this.undeliverable(target, stanza);
      return;
    }
    request.then(
      (reply) => {
        if (reply.string() !== "ok") this.undeliverable(target, stanza);
      },
      (err: unknown) => {
        if (err instanceof RequestError && err.isNoResponders()) {
          // Nobody listens on that node's subject: it is gone (or cut off; it announces itself again when back).
          this.forgetNode(target.node, "unreachable");
          this.undeliverable(target, stanza);
        } else {
          // The node may still deliver it: counting it is all that is safe.
          this.stats.deliveryTimeouts++;
          this.log.warn({ err, peer: target.node }, "a node did not confirm a stanza in time");
        }
      },
    );
  }

  close(target: RemoteSession, error?: StreamError): void {
    const h = headers();
    h.set("op", "close");
    h.set("jid", target.jid.toString());
    h.set("session", target.id);
    if (error) {
      h.set("condition", error.condition);
      if (error.text !== undefined) h.set("text", error.text);
    }
    try {
      this.nc.publish(this.names.nodeSubject(target.node), "", { headers: h });
    } catch (err) {
      this.onError(err, "asking another node to close a session");
    }
  }

  /** A client's answer to an IQ request another node sent: to that node, which waits for it. */
  private relayResponse(node: string, reply: XmlElement): void {
    const h = headers();
    h.set("op", "iq-response");
    this.stats.responsesRelayed++;
    try {
      this.nc.publish(this.names.nodeSubject(node), reply.toString(), { headers: h });
    } catch (err) {
      this.onError(err, "relaying an IQ response to the node that asked");
    }
  }

  onError(err: unknown, what: string): void {
    if (this.stopped) return;
    this.log.error({ err }, `cluster: ${what} failed`);
  }

  /**
   * A stanza its target's node did not take (the session ended, the node is gone). What a
   * single server does for an address without a session then follows here, once: a stanza
   * for that full JID is delivered again (a chat message falls back to the bare JID, an IQ
   * request is answered with an error); a message for the bare JID goes to offline storage
   * when the account has no other target left. Other copies (presence broadcast) are dropped.
   */
  private undeliverable(target: RemoteSession, stanza: XmlElement): void {
    this.stats.undeliverable++;
    this.directory.dropRemote(target);
    const router = this.router;
    const to = tryParseJid(stanza.attrs.to);
    const from = tryParseJid(stanza.attrs.from);
    if (!router || !to || !from || this.redelivered.has(stanza)) return;
    const again =
      to.resource !== ""
        ? to.toString() === target.jid.toString()
        : stanza.name === "message" &&
          to.bareString === target.jid.bareString &&
          this.directory.messageTargets(to.local, to.domain).length === 0;
    if (!again) return;
    this.redelivered.add(stanza);
    this.stats.redelivered++;
    const r = router.deliver(stanza, from, to);
    if (r) r.catch((err) => this.onError(err, "delivering a stanza again"));
  }

  // ---- what arrives

  private onDelta(msg: Msg): void {
    const delta = decodeJson<DirectoryDelta>(msg.data);
    if (!delta) return;
    if (delta.op === "unbind") {
      if (delta.node !== this.node) this.directory.applyUnbind(delta.jid, delta.bind);
    } else if (delta.entry.node !== this.node) {
      this.directory.apply(delta.entry);
    }
  }

  private onNodeMessage(msg: Msg): void {
    const op = msg.headers?.get("op");
    if (op === "call") {
      this.onCall(msg);
      return;
    }
    if (op === "drain") {
      const grace = Number(msg.headers?.get("grace"));
      this.drain(Number.isFinite(grace) && grace >= 0 ? grace : this.opts.config.drainGraceSeconds).then(
        (report) => msg.respond(encodeJson(report)),
        (err: unknown) => {
          this.onError(err, "draining");
          msg.respond(encodeJson({ error: (err as Error).message }));
        },
      );
      return;
    }
    if (op === "iq-response") {
      const reply = parseElement(msg.string());
      if (reply?.name === "iq") this.router?.resolveResponse(reply);
      return;
    }
    const jid = tryParseJid(msg.headers?.get("jid"));
    const sessionId = msg.headers?.get("session") || undefined;
    const session = jid ? this.directory.localSession(jid, sessionId) : undefined;
    if (op === "stanza") {
      this.stats.stanzasIn++;
      if (!session) {
        if (msg.reply) msg.respond("gone");
        return;
      }
      const stanza = parseElement(msg.string());
      if (!stanza) {
        if (msg.reply) msg.respond("bad");
        return;
      }
      session.send(stanza);
      if (msg.reply) msg.respond("ok");
    } else if (op === "close" && session) {
      const condition = (msg.headers?.get("condition") || undefined) as StreamErrorCondition | undefined;
      const text = msg.headers?.get("text") || undefined;
      session.close(condition ? new StreamError(condition, text) : undefined);
    }
  }

  // ---- login limits counted across the cluster

  /** Makes `guard` count the other nodes' logins, and tells them this node's. */
  shareLogins(guard: LoginGuard): void {
    const subject = this.names.loginsSubject;
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        const o = decodeJson<LoginOutcome & { node?: string }>(msg.data);
        if (!o || o.node === this.node || typeof o.address !== "string") return;
        if (o.outcome === "failed")
          guard.apply({
            outcome: "failed",
            address: o.address,
            ...(typeof o.account === "string" ? { account: o.account } : {}),
          });
        else if (o.outcome === "succeeded" && typeof o.account === "string")
          guard.apply({ outcome: "succeeded", account: o.account, address: o.address });
      },
    });
    const unshare = guard.share((outcome) => {
      if (this.stopped) return;
      try {
        this.nc.publish(subject, encodeJson({ ...outcome, node: this.node }));
      } catch (err) {
        this.onError(err, "telling the other nodes of a login");
      }
    });
    this.cleanups.push(() => {
      unshare();
      sub.unsubscribe();
    });
  }

  // ---- NodeBus: requests between the modules of two nodes

  serve(kind: string, handler: (body: NodeMessage) => NodeMessage | Promise<NodeMessage>): () => void {
    this.served.set(kind, handler);
    return () => {
      if (this.served.get(kind) === handler) this.served.delete(kind);
    };
  }

  async ask(
    node: string,
    kind: string,
    body: NodeMessage,
    timeoutMs = 5_000,
  ): Promise<NodeMessage | undefined> {
    const h = headers();
    h.set("op", "call");
    h.set("kind", kind);
    this.stats.calls++;
    try {
      const reply = await this.nc.request(this.names.nodeSubject(node), encodeJson(body), {
        timeout: timeoutMs,
        headers: h,
      });
      return reply.data.length === 0 ? undefined : decodeJson<NodeMessage>(reply.data);
    } catch (err) {
      if (!(err instanceof RequestError && err.isNoResponders()))
        this.onError(err, `asking ${node} (${kind})`);
      return undefined;
    }
  }

  // ---- NodeBus: what one node owns at a time

  owner(scope: string, name: string, opts?: { fresh?: boolean }): Promise<string> {
    return this.owners.owner(scope, name, opts?.fresh);
  }

  ownerNow(scope: string, name: string): string | undefined {
    return this.owners.ownerNow(scope, name);
  }

  holder(scope: string, name: string): Promise<string | undefined> {
    return this.owners.holder(scope, name);
  }

  disown(scope: string, name: string): Promise<void> {
    return this.owners.disown(scope, name);
  }

  onNodeGone(listener: (node: string) => void): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  onOwnershipLost(listener: (scope: string, name: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  onTakeover(scope: string, handler: TakeoverHandler): () => void {
    return this.owners.onTakeover(scope, handler);
  }

  // ---- Liveness, for the owners' registry

  knownAlive(node: string, inc: string): boolean {
    if (node === this.node) return inc === this.inc;
    return this.lastSeen.get(node)?.inc === inc;
  }

  /** Asks the nodes bucket when this node has not heard of `node` yet (it started a moment ago). */
  async alive(node: string, inc: string): Promise<boolean> {
    if (this.knownAlive(node, inc)) return true;
    if (node === this.node || this.lastSeen.has(node)) return false;
    const e = await this.nodesKv.get(node);
    const info = e?.operation === "PUT" ? decodeJson<NodeInfo>(e.value) : undefined;
    return info?.inc === inc && Date.now() - info.at < this.timeoutMs;
  }

  private onCall(msg: Msg): void {
    const handler = this.served.get(msg.headers?.get("kind") ?? "");
    const body = decodeJson<NodeMessage>(msg.data);
    if (!handler || body === undefined) {
      msg.respond(new Uint8Array());
      return;
    }
    Promise.resolve()
      .then(() => handler(body))
      .then(
        (answer) => msg.respond(encodeJson(answer)),
        (err: unknown) => {
          this.onError(err, "answering another node's request");
          msg.respond(new Uint8Array());
        },
      );
  }

  // ---- draining

  /** What the server does to drain (set by the composition root, which owns the listeners). */
  onDrain(drain: DrainStreams): void {
    this.drainStreams = drain;
  }

  /**
   * Drains this node: it takes no more connections and tells its clients to reconnect to the
   * live node with the fewest sessions (`see-other-host`), or, with none, `system-shutdown`.
   * Sessions with resumable stream management are kept `graceSeconds` for their clients to
   * resume them on another node (they move there); those left then end (their unacknowledged
   * messages go to offline storage), and the node leaves the cluster. Resolves once the
   * streams are closed; `left` resolves when the node has left.
   */
  drain(graceSeconds: number): Promise<DrainReport> {
    this.drainStarted = true;
    this.draining ??= this.doDrain(graceSeconds);
    return this.draining;
  }

  private async doDrain(graceSeconds: number): Promise<DrainReport> {
    if (!this.drainStreams) throw new Error("this node cannot drain (no server attached)");
    // Other nodes stop sending clients here before this node sends its own away.
    await this.heartbeat();
    const target = this.drainTarget();
    const error = target
      ? StreamError.seeOtherHost(target.advertise!, `This node is draining; connect to ${target.node}`)
      : new StreamError("system-shutdown", "This node is leaving the cluster; connect again");
    const { streams } = await this.drainStreams(error);
    const awaitingResumption = this.directory.count;
    this.log.info(
      { redirectedTo: target?.node, streams, awaitingResumption, graceSeconds },
      "draining: clients sent away",
    );
    this.left = this.leave(graceSeconds * 1000, error);
    this.left.catch((err) => this.onError(err, "leaving the cluster"));
    return {
      node: this.node,
      ...(target ? { redirectedTo: target.node, address: target.advertise! } : {}),
      condition: error.condition as DrainReport["condition"],
      streams,
      awaitingResumption,
      graceSeconds,
    };
  }

  /** The live node, not draining, with the fewest sessions, that says where its clients connect. */
  private drainTarget(): NodeInfo | undefined {
    const candidates = [...this.lastSeen.values()]
      .map((s) => s.info)
      .filter((info) => info.advertise !== undefined && !info.draining);
    candidates.sort((a, b) => a.sessions - b.sessions || a.node.localeCompare(b.node));
    return candidates[0];
  }

  private async leave(graceMs: number, error: StreamError): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.directory.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const rest = [...this.directory.local.all()];
    for (const s of rest) s.close(error);
    // Their unacknowledged messages go to other nodes' sessions or offline storage first.
    if (rest.length > 0) await new Promise((r) => setTimeout(r, 500));
    await this.stop();
    this.opts.log.info({ node: this.node, ended: rest.length }, "drained: left the cluster");
  }

  get isDraining(): boolean {
    return this.drainStarted;
  }

  private declareMetrics(metrics: MetricRegistry): void {
    const s = this.stats;
    const add = (def: Parameters<MetricRegistry["add"]>[0]) => this.cleanups.push(metrics.add(def));
    add({
      name: "switchboard_cluster_nodes",
      help: "Nodes of the cluster alive as this node sees them, itself included",
      type: "gauge",
      collect: () => this.liveNodes().length,
    });
    add({
      name: "switchboard_cluster_remote_sessions",
      help: "Sessions bound on other nodes, in this node's view of the directory",
      type: "gauge",
      collect: () => this.directory.remoteSessions,
    });
    add({
      name: "switchboard_cluster_nats_connected",
      help: "1 while this node is connected to NATS",
      type: "gauge",
      collect: () => (this.connected ? 1 : 0),
    });
    add({
      name: "switchboard_cluster_stanzas_total",
      help: "Stanzas sent to sessions on other nodes (out) and received for sessions of this node (in)",
      type: "counter",
      labelNames: ["direction"],
      collect: () => [
        [{ direction: "out" }, s.stanzasOut],
        [{ direction: "in" }, s.stanzasIn],
      ],
    });
    add({
      name: "switchboard_cluster_undeliverable_total",
      help: "Stanzas another node did not take (session gone, node gone); delivered again as for an absent resource",
      type: "counter",
      collect: () => s.undeliverable,
    });
    add({
      name: "switchboard_cluster_delivery_timeouts_total",
      help: "Stanzas another node did not confirm within cluster.deliveryTimeoutSeconds",
      type: "counter",
      collect: () => s.deliveryTimeouts,
    });
    add({
      name: "switchboard_cluster_iq_responses_relayed_total",
      help: "Replies to IQ requests another node sent, answered by a client of this node and sent back to that node",
      type: "counter",
      collect: () => s.responsesRelayed,
    });
    add({
      name: "switchboard_cluster_nodes_lost_total",
      help: "Nodes this node found dead (no heartbeat within cluster.nodeTimeoutSeconds)",
      type: "counter",
      collect: () => s.nodesLost,
    });
  }
}
