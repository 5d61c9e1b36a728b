/**
 * The sessions of other nodes as modules count them (PeerSessions): the cluster directory's
 * remote sessions, indexed by the licence their client runs under so a login counts a
 * licence's sessions without a scan, and the licensing module told when that count changes.
 */
import type { PeerSession, PeerSessions, SessionClient } from "../core/peer-sessions.js";
import type { ClientSession } from "../core/session.js";

/** What the index reads of the directory it belongs to. */
export interface PeerView<S extends PeerSession> {
  node(): string;
  bindOrderOf(session: ClientSession): number | undefined;
  ofAccount(username: string): S[];
  all(): Iterable<S>;
}

const NONE: ReadonlySet<PeerSession> = new Set();

export class PeerIndex<S extends PeerSession> implements PeerSessions {
  private readonly byLicence = new Map<string, Set<S>>();
  private readonly listeners = new Set<(licenceId: string) => void>();
  /** What the entries of this node's sessions say of their client (set by the licensing module). */
  describe: ((session: ClientSession) => SessionClient | undefined) | undefined;

  constructor(private readonly view: PeerView<S>) {}

  get node(): string {
    return this.view.node();
  }

  describeClients(describe: (session: ClientSession) => SessionClient | undefined): void {
    this.describe = describe;
  }

  clientOf(session: ClientSession): SessionClient | undefined {
    return this.describe?.(session);
  }

  bindOrderOf(session: ClientSession): number | undefined {
    return this.view.bindOrderOf(session);
  }

  underLicence(licenceId: string): ReadonlySet<PeerSession> {
    return this.byLicence.get(licenceId) ?? NONE;
  }

  ofAccount(username: string): PeerSession[] {
    return this.view.ofAccount(username);
  }

  all(): Iterable<PeerSession> {
    return this.view.all();
  }

  onLicenceChange(listener: (licenceId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- kept up to date by the directory

  /** A session of another node appeared. */
  added(s: S): void {
    this.enter(s, s.client?.licenceId);
  }

  /** A session of another node changed; `before` is the licence it ran under until now. */
  changed(s: S, before: string | undefined): void {
    const now = s.client?.licenceId;
    if (now === before) return;
    this.leave(s, before);
    this.enter(s, now);
  }

  /** A session of another node left this node's view. */
  dropped(s: S): void {
    this.leave(s, s.client?.licenceId);
  }

  private enter(s: S, licenceId: string | undefined): void {
    if (licenceId === undefined) return;
    let set = this.byLicence.get(licenceId);
    if (!set) {
      set = new Set();
      this.byLicence.set(licenceId, set);
    }
    set.add(s);
    this.tell(licenceId);
  }

  private leave(s: S, licenceId: string | undefined): void {
    if (licenceId === undefined) return;
    const set = this.byLicence.get(licenceId);
    if (!set?.delete(s)) return;
    if (set.size === 0) this.byLicence.delete(licenceId);
    this.tell(licenceId);
  }

  private tell(licenceId: string): void {
    for (const listener of [...this.listeners]) listener(licenceId);
  }
}
