/**
 * Bound client sessions by account and resource. Binding a resource that is
 * already in use replaces the older session (it gets a `conflict` stream
 * error), as RFC 6120 §7.7.2.2 allows and most servers do by default.
 */
import { randomBytes } from "node:crypto";
import { StanzaError, StreamError } from "./errors.js";
import { Jid, JidError, normalizeResource } from "./jid.js";
import { type ClientSession, isAvailable } from "./session.js";

export class SessionManager {
  private readonly byAccount = new Map<string, Map<string, ClientSession>>();
  private boundCount = 0;

  constructor(
    private readonly domain: string,
    private readonly maxResourcesPerAccount: number,
  ) {}

  /**
   * Binds a resource for an authenticated session. `requested` is the client's
   * wish (may be undefined): it is normalised; an invalid one is bad-request.
   */
  bind(session: ClientSession, requested: string | undefined): Jid {
    const username = session.username;
    if (!username) throw new StanzaError("not-allowed", "not authenticated");
    let resource: string;
    if (requested !== undefined && requested !== "") {
      try {
        resource = normalizeResource(requested);
      } catch (err) {
        if (err instanceof JidError) throw new StanzaError("bad-request", err.message);
        throw err;
      }
    } else {
      resource = randomBytes(6).toString("base64url");
    }
    let resources = this.byAccount.get(username);
    if (!resources) {
      resources = new Map();
      this.byAccount.set(username, resources);
    }
    const existing = resources.get(resource);
    if (existing && existing !== session) {
      // The old session is told why it goes; its cleanup will not unbind the new one (checked in unbind).
      resources.delete(resource);
      this.boundCount--;
      existing.close(new StreamError("conflict", "Replaced by new connection"));
    } else if (resources.size >= this.maxResourcesPerAccount) {
      throw new StanzaError("resource-constraint", "too many resources bound for this account");
    }
    resources.set(resource, session);
    this.boundCount++;
    const jid = Jid.trusted(username, this.domain, resource);
    session.resource = resource;
    session.jid = jid;
    return jid;
  }

  /** Removes a session; a no-op when it was replaced or never bound. */
  unbind(session: ClientSession): void {
    if (!session.username || session.resource === undefined) return;
    const resources = this.byAccount.get(session.username);
    if (!resources || resources.get(session.resource) !== session) return;
    resources.delete(session.resource);
    this.boundCount--;
    if (resources.size === 0) this.byAccount.delete(session.username);
  }

  /** All bound sessions of an account. */
  resourcesOf(username: string): ClientSession[] {
    const r = this.byAccount.get(username);
    return r ? [...r.values()] : [];
  }

  get(username: string, resource: string): ClientSession | undefined {
    return this.byAccount.get(username)?.get(resource);
  }

  /** The sessions that should receive a message addressed to the bare JID (RFC 6121 §8.5.2.1.1). */
  messageTargets(username: string): ClientSession[] {
    const r = this.byAccount.get(username);
    if (!r) return [];
    let best = -Infinity;
    let out: ClientSession[] = [];
    for (const s of r.values()) {
      if (!isAvailable(s) || s.priority < 0) continue;
      if (s.priority > best) {
        best = s.priority;
        out = [s];
      } else if (s.priority === best) out.push(s);
    }
    return out;
  }

  /** Available resources (those that sent initial presence). */
  availableOf(username: string): ClientSession[] {
    return this.resourcesOf(username).filter(isAvailable);
  }

  /** Interested resources (RFC 6121 §2.1.6): bound sessions that requested the roster. */
  interestedOf(username: string): ClientSession[] {
    return this.resourcesOf(username).filter((s) => s.rosterRequested && !s.closed);
  }

  isOnline(username: string): boolean {
    return this.byAccount.has(username);
  }

  get count(): number {
    return this.boundCount;
  }

  accounts(): IterableIterator<string> {
    return this.byAccount.keys();
  }

  *all(): IterableIterator<ClientSession> {
    for (const r of this.byAccount.values()) yield* r.values();
  }
}
