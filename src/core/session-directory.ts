/**
 * The session directory: which sessions are bound, by account and resource, on every
 * served domain. Local delivery asks it for targets (the available, interested or
 * highest-priority resources of an account) instead of looking sessions up itself, so
 * the in-memory directory here can give way to a cluster-wide one (sessions on other
 * nodes are then entries whose `send` crosses to their node).
 *
 * Binding a resource that is already in use replaces the older session (it gets a
 * `conflict` stream error), as RFC 6120 §7.7.2.2 allows and most servers do by default.
 */
import { randomBytes } from "node:crypto";
import { StanzaError, StreamError } from "./errors.js";
import { accountJid, accountKey, Jid, JidError, normalizeResource } from "./jid.js";
import type { PeerSessions } from "./peer-sessions.js";
import { type ClientSession, isAvailable } from "./session.js";

export interface SessionDirectory {
  /**
   * Binds a resource for an authenticated session: its `username` is the account key
   * (accountKey()), or its localpart on `domain`. Elsewhere `username` is an account key, or a
   * localpart when `domain` is given. `requested` is the client's
   * wish (may be undefined): it is normalised; an invalid one is bad-request, one too many
   * is resource-constraint.
   */
  bind(session: ClientSession, requested: string | undefined, domain?: string): Promise<Jid>;
  /** Removes a session; a no-op when it was replaced or never bound. */
  unbind(session: ClientSession): void;
  get(username: string, resource: string, domain?: string): ClientSession | undefined;
  /** Every bound session of an account. */
  resourcesOf(username: string, domain?: string): ClientSession[];
  /** Bound sessions that sent available presence. */
  availableOf(username: string, domain?: string): ClientSession[];
  /** Interested resources (RFC 6121 §2.1.6): bound sessions that requested the roster. */
  interestedOf(username: string, domain?: string): ClientSession[];
  /** The sessions that get a message addressed to the bare JID (RFC 6121 §8.5.2.1.1). */
  messageTargets(username: string, domain?: string): ClientSession[];
  isOnline(username: string, domain?: string): boolean;
  /**
   * A bound session's presence, priority or interest changed (the presence and roster modules
   * call it after changing them), so a cluster-wide directory tells the other nodes before any
   * stanza that follows from the change.
   */
  updated(session: ClientSession): void;
  /** Bound sessions held by this process. */
  readonly count: number;
  /** Accounts with a bound session (bare JIDs' localparts on the primary domain, else "local@domain"). */
  accounts(): IterableIterator<string>;
  /** The sessions held by this process (what it closes at shutdown, counts in its metrics). */
  all(): IterableIterator<ClientSession>;
  /** The sessions of the other nodes of a cluster; undefined on a single server. */
  readonly peers?: PeerSessions;
}

/**
 * The resource a bind gets: the client's wish normalised (an invalid one is bad-request), or a
 * random one when it asked for none.
 */
export function chooseResource(requested: string | undefined): string {
  if (requested === undefined || requested === "") return randomBytes(6).toString("base64url");
  try {
    return normalizeResource(requested);
  } catch (err) {
    if (err instanceof JidError) throw new StanzaError("bad-request", err.message);
    throw err;
  }
}

/** The in-memory directory of one process. */
export class LocalSessionDirectory implements SessionDirectory {
  /**
   * "username" on the primary domain, "username@domain" elsewhere → the account's sessions,
   * in binding order. An array, not a map by resource: an account has a few resources (at
   * most maxResourcesPerAccount), and an array of one costs an idle session about 130 bytes
   * less than a map of one.
   */
  private readonly byAccount = new Map<string, ClientSession[]>();
  private boundCount = 0;

  constructor(
    private readonly primaryDomain: string,
    private readonly maxResourcesPerAccount: number,
  ) {}

  /** `username` is an account key (accountKey()), or a localpart when its domain is given. */
  private key(username: string, domain: string | undefined): string {
    return domain === undefined ? username : accountKey(username, domain, this.primaryDomain);
  }

  async bind(session: ClientSession, requested: string | undefined, domain?: string): Promise<Jid> {
    const username = session.username;
    if (!username) throw new StanzaError("not-allowed", "not authenticated");
    const resource = chooseResource(requested);
    const key = this.key(username, domain);
    let resources = this.byAccount.get(key);
    if (!resources) {
      resources = [];
      this.byAccount.set(key, resources);
    }
    const at = resources.findIndex((s) => s.resource === resource);
    const existing = at >= 0 ? resources[at] : undefined;
    if (existing !== session) {
      if (existing) {
        // The old session is told why it goes; its cleanup will not unbind the new one (checked in unbind).
        resources.splice(at, 1);
        this.boundCount--;
        existing.close(new StreamError("conflict", "Replaced by new connection"));
      } else if (resources.length >= this.maxResourcesPerAccount) {
        throw new StanzaError("resource-constraint", "too many resources bound for this account");
      }
      resources.push(session);
      this.boundCount++;
    }
    const account = accountJid(key, this.primaryDomain);
    const jid = Jid.trusted(account.local, account.domain, resource);
    session.resource = resource;
    session.jid = jid;
    return jid;
  }

  unbind(session: ClientSession): void {
    if (!session.username || session.resource === undefined || !session.jid) return;
    const key = this.key(session.jid.local, session.jid.domain);
    const resources = this.byAccount.get(key);
    const at = resources ? resources.indexOf(session) : -1;
    if (!resources || at < 0) return;
    resources.splice(at, 1);
    this.boundCount--;
    if (resources.length === 0) this.byAccount.delete(key);
  }

  resourcesOf(username: string, domain?: string): ClientSession[] {
    const r = this.byAccount.get(this.key(username, domain));
    return r ? [...r] : [];
  }

  get(username: string, resource: string, domain?: string): ClientSession | undefined {
    return this.byAccount.get(this.key(username, domain))?.find((s) => s.resource === resource);
  }

  messageTargets(username: string, domain?: string): ClientSession[] {
    const r = this.byAccount.get(this.key(username, domain));
    if (!r) return [];
    let best = -Infinity;
    let out: ClientSession[] = [];
    for (const s of r) {
      if (!isAvailable(s) || s.priority < 0) continue;
      if (s.priority > best) {
        best = s.priority;
        out = [s];
      } else if (s.priority === best) out.push(s);
    }
    return out;
  }

  availableOf(username: string, domain?: string): ClientSession[] {
    return this.resourcesOf(username, domain).filter(isAvailable);
  }

  interestedOf(username: string, domain?: string): ClientSession[] {
    return this.resourcesOf(username, domain).filter((s) => s.rosterRequested && !s.closed);
  }

  isOnline(username: string, domain?: string): boolean {
    return this.byAccount.has(this.key(username, domain));
  }

  updated(_session: ClientSession): void {
    // Nothing to tell: the sessions are the entries.
  }

  get count(): number {
    return this.boundCount;
  }

  accounts(): IterableIterator<string> {
    return this.byAccount.keys();
  }

  *all(): IterableIterator<ClientSession> {
    for (const r of this.byAccount.values()) yield* r;
  }
}
