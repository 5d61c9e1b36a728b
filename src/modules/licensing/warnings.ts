/**
 * The warning an unlicensed client's account gets in warn mode: a headline message
 * from the server, at most once per interval per account (the last one's instant is
 * kept in keyValue("licensing"), so restarts and several sessions do not repeat it).
 */
import type { Clock } from "../../core/clock.js";
import type { ClientSession } from "../../core/session.js";
import type { KeyValueStore } from "../../core/storage/types.js";
import { x } from "../../core/xml/element.js";
import type { AccessPolicy } from "../../licensing/index.js";
import { cutoffFor, isoInstant, warningElement } from "../../licensing/index.js";

const WARNED_AT = "warned-at";

export class UnlicensedWarnings {
  /** Accounts whose warning is being decided, so two sessions binding at once get one. */
  private readonly pending = new Set<string>();
  private seq = 0;

  constructor(
    private readonly deps: { domain: string; clock: Clock; store: KeyValueStore; intervalMs: number },
  ) {}

  /** Sends the headline to the session unless its account had one within the interval; true when sent. */
  async maybeWarn(session: ClientSession, policy: AccessPolicy): Promise<boolean> {
    const username = session.username;
    if (username === undefined || session.jid === undefined || this.pending.has(username)) return false;
    this.pending.add(username);
    try {
      const { store, clock, intervalMs } = this.deps;
      const last = Number(await store.get(username, WARNED_AT));
      const now = clock.now();
      if (Number.isFinite(last) && now - last < intervalMs) return false;
      if (session.closed) return false;
      await store.set(username, WARNED_AT, String(now));
      session.send(this.headline(session, policy, now));
      return true;
    } finally {
      this.pending.delete(username);
    }
  }

  private headline(session: ClientSession, policy: AccessPolicy, now: number) {
    const cutoff = cutoffFor(policy, now, session.username);
    const when =
      cutoff === undefined
        ? "Unlicensed clients will be refused in the future."
        : `From ${isoInstant(cutoff)} unlicensed clients will be refused.`;
    const where = policy.infoUrl === undefined ? "" : ` Licensed clients: ${policy.infoUrl}`;
    return x(
      "message",
      {
        type: "headline",
        from: session.jid!.domain,
        to: session.jid!.toString(),
        id: `licence-warning-${now.toString(36)}-${++this.seq}`,
      },
      x("subject", null, "Your client is not licensed for this network"),
      x(
        "body",
        null,
        `The client software you use has not proved a licence for this network. ${when}${where}`,
      ),
      warningElement({ cutoff, infoUrl: policy.infoUrl }),
    );
  }
}
