/**
 * Grants of the server's own web chat: each load of /chat hands the browser a random grant
 * id in an HttpOnly, SameSite=Strict cookie scoped to the WebSocket path. A WebSocket
 * connection that carries a live grant, from the address it was issued to and with the
 * page's own Origin, is the web chat (a first-party client): the licensing policy does not
 * apply to it, for the one account the grant binds to at its first login. Grants live in
 * memory: a restart ends them, and the page's next load issues a new one.
 */
import { randomBytes } from "node:crypto";

interface Grant {
  address: string;
  /** The account of the first login made with it; no other account may use it. */
  account?: string;
  expiresAt: number;
}

export interface WebChatGrantsOptions {
  /** A grant ends this long after its last use (the page's load or a connection). */
  ttlMs: number;
  now: () => number;
  /** At most this many grants are kept; the oldest go first. */
  max?: number;
}

export class WebChatGrants {
  private readonly grants = new Map<string, Grant>();

  constructor(private readonly opts: WebChatGrantsOptions) {}

  get size(): number {
    return this.grants.size;
  }

  /** A new grant for a page loaded from `address`; returns its id (the cookie's value). */
  issue(address: string): string {
    this.prune();
    const id = randomBytes(32).toString("base64url");
    this.grants.set(id, { address, expiresAt: this.opts.now() + this.opts.ttlMs });
    return id;
  }

  /**
   * The grant `id`, if it is live and was issued to `address`; using it extends its life.
   * `allows` tells whether it covers an account (see FirstPartyGrant in the licensing module).
   */
  use(
    id: string | undefined,
    address: string,
  ): { allows(username: string, verified: boolean): boolean } | undefined {
    if (id === undefined) return undefined;
    const grant = this.grants.get(id);
    const now = this.opts.now();
    if (!grant || grant.expiresAt <= now || grant.address !== address) return undefined;
    grant.expiresAt = now + this.opts.ttlMs;
    // Most recently used last, so pruning drops the least recently used first.
    this.grants.delete(id);
    this.grants.set(id, grant);
    return {
      allows(username: string, verified: boolean): boolean {
        if (grant.account !== undefined) return grant.account === username;
        if (verified) grant.account = username;
        return true;
      },
    };
  }

  private prune(): void {
    const now = this.opts.now();
    for (const [id, g] of this.grants) if (g.expiresAt <= now) this.grants.delete(id);
    const max = this.opts.max ?? 100_000;
    for (const id of this.grants.keys()) {
      if (this.grants.size < max) break;
      this.grants.delete(id);
    }
  }
}
