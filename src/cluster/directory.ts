/**
 * The cluster-wide session directory. Sessions of this node live in an in-memory
 * LocalSessionDirectory as on a single server; sessions of other nodes are RemoteSessions
 * whose `send` and `close` cross to their node. Every node keeps a replica of the whole
 * directory, so lookups stay synchronous:
 *
 * - a bind claims the full JID in the JetStream KV bucket (create, or update at the revision
 *   read, retried on a race): the KV revision of the claim orders binds cluster-wide, so the
 *   later bind of a full JID wins on every node and the older session gets `conflict`;
 * - binds, presence changes and unbinds are announced on the cluster's directory subject
 *   before the stanzas that follow from them, on the same NATS connection, so another node
 *   never receives a presence from a resource it does not know yet;
 * - the KV bucket is what a starting node reads, what `cluster status` counts, and what the
 *   survivors clean when a node dies.
 */
import { StanzaError, StreamError } from "../core/errors.js";
import { accountJid, accountKey, Jid, tryParseJid } from "../core/jid.js";
import type { PeerSession, SessionClient } from "../core/peer-sessions.js";
import { type ClientSession, isAvailable } from "../core/session.js";
import { chooseResource, LocalSessionDirectory, type SessionDirectory } from "../core/session-directory.js";
import type { XmlElement } from "../core/xml/element.js";
import { parseElement } from "../core/xml/fragment.js";
import { type DirectoryDelta, entryKey, type SessionEntry } from "./entry.js";
import { PeerIndex } from "./peers.js";

/** What the directory needs from the node's NATS side. */
export interface ClusterLink {
  readonly node: string;
  readonly inc: string;
  /** Claims the KV key for a bind; resolves with the revision of the claim. */
  claim(key: string, entry: SessionEntry): Promise<number>;
  /** Rewrites the entry if the key is still at `revision`; resolves with the new revision, or undefined if it moved on. */
  write(key: string, entry: SessionEntry, revision: number): Promise<number | undefined>;
  /** Deletes the entry if the key is still at `revision`. */
  release(key: string, revision: number): Promise<void>;
  /** Tells the other nodes. */
  announce(delta: DirectoryDelta): void;
  /** Hands a stanza to the node holding `target`. */
  deliver(target: RemoteSession, stanza: XmlElement): void;
  /** Asks the node holding `target` to close it. */
  close(target: RemoteSession, error?: StreamError): void;
  onError(err: unknown, what: string): void;
}

/** A session bound on another node, as this node sees it. */
export class RemoteSession implements ClientSession, PeerSession {
  readonly directedPresence = new Set<string>();
  readonly data = new Map<string | symbol, unknown>();
  readonly authenticated = true;
  readonly bound = true;
  readonly attached = true;
  readonly streamId = "";
  readonly username: string;
  readonly resource: string;
  readonly jid: Jid;
  presence?: XmlElement;
  priority = 0;
  rosterRequested = false;
  private ended = false;

  constructor(
    public entry: SessionEntry,
    jid: Jid,
    private readonly link: ClusterLink,
    primaryDomain: string,
  ) {
    this.jid = jid;
    this.username = accountKey(jid.local, jid.domain, primaryDomain);
    this.resource = jid.resource;
    this.refresh(entry);
  }

  get id(): string {
    return this.entry.session;
  }
  get node(): string {
    return this.entry.node;
  }
  get transport(): string {
    return this.entry.transport;
  }
  get remoteAddress(): string {
    return this.entry.address;
  }
  get connectedAt(): number {
    return this.entry.connectedAt;
  }
  get secure(): boolean {
    return this.entry.secure;
  }
  get closed(): boolean {
    return this.ended;
  }
  get bindOrder(): number {
    return this.entry.bind;
  }
  get client(): SessionClient | undefined {
    return this.entry.client;
  }

  refresh(entry: SessionEntry): void {
    this.entry = entry;
    this.priority = entry.priority;
    this.rosterRequested = entry.interested;
    this.presence = entry.presence === undefined ? undefined : parseElement(entry.presence);
  }

  channelBinding(): Buffer | undefined {
    return undefined;
  }
  channelBindingTypes(): string[] {
    return [];
  }

  send(stanza: XmlElement): void {
    if (!this.ended) this.link.deliver(this, stanza);
  }

  /** Written on its own node, which paces nothing here. */
  whenWritable(): Promise<void> {
    return Promise.resolve();
  }

  close(error?: StreamError): void {
    if (!this.ended) this.link.close(this, error);
  }

  /** Gone from the directory. */
  markEnded(): void {
    this.ended = true;
  }
}

function sameClient(a: SessionClient | undefined, b: SessionClient | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function jidOf(session: ClientSession): Jid {
  return session.jid!;
}

function addressed(presence: XmlElement, from: Jid, to: Jid): XmlElement {
  const copy = presence.clone();
  copy.attrs.from = from.toString();
  copy.attrs.to = to.toString();
  return copy;
}

/** Directory state of a session of this node. */
interface Held {
  key: string;
  entry: SessionEntry;
  /** The KV revision last written for it. */
  revision: number;
  /** KV writes for one session happen in order. */
  chain: Promise<void>;
}

/** Unbinds remembered so a late copy of an older state cannot bring an entry back. */
const TOMBSTONE_MS = 60_000;

export class ClusterSessionDirectory implements SessionDirectory {
  readonly local: LocalSessionDirectory;
  private readonly held = new Map<ClientSession, Held>();
  /** Account key → resource → session on another node. */
  private readonly remote = new Map<string, Map<string, RemoteSession>>();
  private remoteCount = 0;
  private readonly tombstones = new Map<string, { bind: number; at: number }>();
  private link!: ClusterLink;
  /** The remote sessions as modules count them (by licence, by account). */
  readonly peers: PeerIndex<RemoteSession>;

  constructor(
    private readonly primaryDomain: string,
    private readonly maxResourcesPerAccount: number,
  ) {
    this.local = new LocalSessionDirectory(primaryDomain, maxResourcesPerAccount);
    this.peers = new PeerIndex<RemoteSession>({
      node: () => this.link.node,
      bindOrderOf: (session) => this.held.get(session)?.entry.bind,
      ofAccount: (username) => [...(this.remote.get(username)?.values() ?? [])],
      all: () => this.remoteAll(),
    });
  }

  private *remoteAll(): IterableIterator<RemoteSession> {
    for (const resources of this.remote.values()) yield* resources.values();
  }

  connect(link: ClusterLink): void {
    this.link = link;
  }

  private accountKey(username: string, domain: string | undefined): string {
    return domain === undefined ? username : accountKey(username, domain, this.primaryDomain);
  }

  async bind(session: ClientSession, requested: string | undefined, domain?: string): Promise<Jid> {
    const username = session.username;
    if (!username) throw new StanzaError("not-allowed", "not authenticated");
    const resource = chooseResource(requested);
    // `username` is the account key, or the localpart on `domain`.
    const account =
      domain === undefined ? accountJid(username, this.primaryDomain) : Jid.trusted(username, domain);
    const d = account.domain;
    const acct = this.accountKey(account.local, d);
    const others =
      this.local.resourcesOf(account.local, d).filter((s) => s.resource !== resource).length +
      [...(this.remote.get(acct)?.keys() ?? [])].filter((r) => r !== resource).length;
    if (others >= this.maxResourcesPerAccount) {
      throw new StanzaError("resource-constraint", "too many resources bound for this account");
    }
    const jid = Jid.trusted(account.local, d, resource);
    const key = entryKey(jid);
    const entry = this.entryOf(session, jid, 0, 0);
    let revision: number;
    try {
      revision = await this.link.claim(key, entry);
    } catch (err) {
      this.link.onError(err, "claiming a resource in the cluster directory");
      throw new StanzaError("resource-constraint", "the cluster directory is unavailable; try again");
    }
    entry.bind = revision;
    const sameHere = this.local.get(account.local, resource, d);
    const heldThere = sameHere ? this.held.get(sameHere) : undefined;
    if (sameHere && sameHere !== session && heldThere && heldThere.entry.bind > revision) {
      // A bind of the same resource on this node claimed it after us: it wins.
      throw new StanzaError("conflict", "the resource was bound again meanwhile");
    }
    const older = this.remote.get(acct)?.get(resource);
    if (older && older.entry.bind < revision) this.dropRemote(older);
    // A session of this node holding the resource is replaced here (conflict); one on another
    // node is closed by its node when it sees this bind.
    const bound = await this.local.bind(session, resource, domain);
    this.held.set(session, { key, entry, revision, chain: Promise.resolve() });
    this.link.announce({ op: "bind", entry });
    return bound;
  }

  unbind(session: ClientSession): void {
    this.local.unbind(session);
    const h = this.held.get(session);
    if (!h) return;
    this.held.delete(session);
    this.link.announce({ op: "unbind", jid: h.entry.jid, node: h.entry.node, bind: h.entry.bind });
    h.chain = h.chain
      .then(() => this.link.release(h.key, h.revision))
      .catch((err) => this.link.onError(err, "removing a session from the cluster directory"));
    this.pending.add(h.chain);
    h.chain.finally(() => this.pending.delete(h.chain));
  }

  updated(session: ClientSession): void {
    const h = this.held.get(session);
    if (!h || !session.jid) return;
    const next = this.entryOf(session, session.jid, h.entry.bind, h.entry.seq + 1);
    if (
      next.priority === h.entry.priority &&
      next.interested === h.entry.interested &&
      next.presence === h.entry.presence &&
      sameClient(next.client, h.entry.client)
    ) {
      return;
    }
    if (next.presence !== undefined) {
      next.knew =
        h.entry.presence === undefined
          ? this.availableOf(jidOf(session).local, jidOf(session).domain)
              .filter((s) => s !== session)
              .map((s) => s.id)
          : h.entry.knew;
    }
    h.entry = next;
    this.link.announce({ op: "update", entry: next });
    h.chain = h.chain
      .then(async () => {
        const revision = await this.link.write(h.key, next, h.revision);
        if (revision !== undefined) h.revision = revision;
      })
      .catch((err) => this.link.onError(err, "updating the cluster directory"));
  }

  /** KV writes still under way (a stopping node waits for them). */
  private readonly pending = new Set<Promise<void>>();

  async flush(): Promise<void> {
    await Promise.all([...this.pending, ...[...this.held.values()].map((h) => h.chain)]);
  }

  private entryOf(session: ClientSession, jid: Jid, bind: number, seq: number): SessionEntry {
    const entry: SessionEntry = {
      jid: jid.toString(),
      node: this.link.node,
      inc: this.link.inc,
      session: session.id,
      bind,
      seq,
      ...(isAvailable(session) && session.presence ? { presence: session.presence.toString() } : {}),
      priority: session.priority,
      interested: session.rosterRequested,
      transport: session.transport,
      address: session.remoteAddress,
      secure: session.secure,
      connectedAt: session.connectedAt,
    };
    const client = this.peers.clientOf(session);
    if (client) entry.client = client;
    return entry;
  }

  // ---- what other nodes announce

  /** A bind or update from another node (or read from the KV bucket). */
  apply(entry: SessionEntry): void {
    if (entry.node === this.link.node && entry.inc === this.link.inc) return;
    const dead = this.tombstones.get(entry.jid);
    if (dead && dead.bind >= entry.bind) return;
    const jid = tryParseJid(entry.jid);
    if (!jid || jid.resource === "") return;
    const mine = this.local.get(jid.local, jid.resource, jid.domain);
    const mineHeld = mine ? this.held.get(mine) : undefined;
    if (mine && mineHeld) {
      if (mineHeld.entry.bind > entry.bind) return;
      if (mineHeld.entry.bind < entry.bind && !mine.closed) {
        mine.close(new StreamError("conflict", "Replaced by new connection"));
      }
    }
    const acct = this.accountKey(jid.local, jid.domain);
    let resources = this.remote.get(acct);
    const existing = resources?.get(jid.resource);
    const wasAvailable = existing?.entry.presence !== undefined && existing.entry.bind === entry.bind;
    if (existing) {
      const e = existing.entry;
      if (e.bind > entry.bind || (e.bind === entry.bind && e.seq >= entry.seq)) return;
      if (e.bind === entry.bind) {
        const licence = existing.client?.licenceId;
        existing.refresh(entry);
        this.peers.changed(existing, licence);
        if (!wasAvailable && entry.presence !== undefined) this.becameAvailable(existing);
        return;
      }
      this.dropRemote(existing);
      resources = this.remote.get(acct);
    }
    if (!resources) {
      resources = new Map();
      this.remote.set(acct, resources);
    }
    const added = new RemoteSession(entry, jid, this.link, this.primaryDomain);
    resources.set(jid.resource, added);
    this.remoteCount++;
    this.peers.added(added);
    if (entry.presence !== undefined) this.becameAvailable(added);
  }

  /**
   * A resource on another node became available. Its node exchanged presence with the
   * account's resources it knew of (RFC 6121 §4.2.2: an account is subscribed to itself); a
   * resource of this node that became available at the same moment was not among them, and
   * this node did not know of the other one either: the two exchange presence here.
   */
  private becameAvailable(remote: RemoteSession): void {
    if (!remote.presence) return;
    const knew = new Set(remote.entry.knew ?? []);
    for (const mine of this.local.availableOf(remote.username)) {
      if (knew.has(mine.id) || !mine.presence || !mine.jid) continue;
      mine.send(addressed(remote.presence, remote.jid, remote.jid.bare()));
      remote.send(addressed(mine.presence, mine.jid, mine.jid.bare()));
    }
  }

  /** An unbind from another node. */
  applyUnbind(jid: string, bind: number): void {
    this.tombstones.set(jid, { bind, at: Date.now() });
    const parsed = tryParseJid(jid);
    if (!parsed) return;
    const s = this.remote.get(this.accountKey(parsed.local, parsed.domain))?.get(parsed.resource);
    if (s && s.entry.bind <= bind) this.dropRemote(s);
  }

  /** Removes a remote session from this node's view; true when it was there with that bind. */
  dropRemote(s: RemoteSession): boolean {
    const acct = s.username;
    const resources = this.remote.get(acct);
    if (resources?.get(s.resource) !== s) return false;
    resources.delete(s.resource);
    if (resources.size === 0) this.remote.delete(acct);
    this.remoteCount--;
    s.markEnded();
    this.peers.dropped(s);
    return true;
  }

  /**
   * Forgets the sessions of a node (dead, stopped, or restarted: `keepInc` is its new
   * incarnation, whose sessions stay). Returns those forgotten.
   */
  dropNode(node: string, keepInc?: string): RemoteSession[] {
    const gone: RemoteSession[] = [];
    for (const resources of this.remote.values()) {
      for (const s of resources.values()) {
        if (s.node === node && s.entry.inc !== keepInc) gone.push(s);
      }
    }
    for (const s of gone) this.dropRemote(s);
    return gone;
  }

  /** Nodes that hold sessions in this node's view. */
  remoteNodes(): Set<string> {
    const nodes = new Set<string>();
    for (const resources of this.remote.values()) for (const s of resources.values()) nodes.add(s.node);
    return nodes;
  }

  pruneTombstones(now: number): void {
    for (const [jid, t] of this.tombstones) if (now - t.at > TOMBSTONE_MS) this.tombstones.delete(jid);
  }

  /** The local sessions with their directory entries (to announce again after a NATS outage). */
  heldEntries(): { session: ClientSession; key: string; entry: SessionEntry }[] {
    return [...this.held].map(([session, h]) => ({ session, key: h.key, entry: h.entry }));
  }

  /** Records a new claim of a local session's key (after the cluster lost it). */
  reclaimed(session: ClientSession, revision: number): void {
    const h = this.held.get(session);
    if (!h) return;
    h.revision = revision;
    h.entry = { ...h.entry, bind: revision };
  }

  /** The local session with this full JID and session id, if it is still bound. */
  localSession(jid: Jid, sessionId: string | undefined): ClientSession | undefined {
    const s = this.local.get(jid.local, jid.resource, jid.domain);
    if (!s || s.closed || (sessionId !== undefined && s.id !== sessionId)) return undefined;
    return s;
  }

  get remoteSessions(): number {
    return this.remoteCount;
  }

  // ---- SessionDirectory: local and remote sessions together

  get(username: string, resource: string, domain?: string): ClientSession | undefined {
    const here = this.local.get(username, resource, domain);
    if (here && !here.closed) return here;
    return this.remote.get(this.accountKey(username, domain))?.get(resource) ?? here;
  }

  resourcesOf(username: string, domain?: string): ClientSession[] {
    const here = this.local.resourcesOf(username, domain);
    const there = this.remote.get(this.accountKey(username, domain));
    if (!there) return here;
    const ownResources = new Set(here.filter((s) => !s.closed).map((s) => s.resource));
    return [...here, ...[...there.values()].filter((s) => !ownResources.has(s.resource))];
  }

  availableOf(username: string, domain?: string): ClientSession[] {
    return this.resourcesOf(username, domain).filter(isAvailable);
  }

  interestedOf(username: string, domain?: string): ClientSession[] {
    return this.resourcesOf(username, domain).filter((s) => s.rosterRequested && !s.closed);
  }

  messageTargets(username: string, domain?: string): ClientSession[] {
    let best = -Infinity;
    let out: ClientSession[] = [];
    for (const s of this.resourcesOf(username, domain)) {
      if (!isAvailable(s) || s.priority < 0) continue;
      if (s.priority > best) {
        best = s.priority;
        out = [s];
      } else if (s.priority === best) out.push(s);
    }
    return out;
  }

  isOnline(username: string, domain?: string): boolean {
    return this.local.isOnline(username, domain) || this.remote.has(this.accountKey(username, domain));
  }

  get count(): number {
    return this.local.count;
  }

  accounts(): IterableIterator<string> {
    return this.local.accounts();
  }

  all(): IterableIterator<ClientSession> {
    return this.local.all();
  }
}
