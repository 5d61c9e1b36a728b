/**
 * Presence broadcast (RFC 6121 §4): initial presence with probes, updates,
 * unavailable presence (sent or implied by a disconnect), directed presence,
 * answers to probes and delivery of presence to local accounts. Everything for
 * another account goes through the router, so contacts on other servers and
 * filters such as blocking are treated the same as local ones.
 */

import type { Clock } from "../../core/clock.js";
import type { ServerEvents } from "../../core/events.js";
import { Jid, tryParseJid } from "../../core/jid.js";
import type { Router } from "../../core/router.js";
import { type ClientSession, isAvailable } from "../../core/session.js";
import type { SessionDirectory } from "../../core/session-directory.js";
import type { Storage } from "../../core/storage/types.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";
import { NS_DELAY } from "../../core/xml/namespaces.js";
import type { RosterApi } from "../roster/api.js";
import { hasFrom, hasTo } from "./subscription.js";

/** `username` below is an account key (accountKey()). */
export interface PresenceServices {
  /** The primary domain. */
  domain: string;
  accountKey(account: Jid): string;
  accountJid(key: string): Jid;
  clock: Clock;
  storage: Storage;
  sessions: SessionDirectory;
  router: Router;
  fire<K extends keyof ServerEvents>(event: K, payload: ServerEvents[K]): Promise<boolean>;
}

/** A roster item's JID (stored normalised: "local@domain" or "domain") as a Jid. */
export function storedBareJid(s: string): Jid {
  const at = s.indexOf("@");
  return at < 0 ? Jid.trusted("", s) : Jid.trusted(s.slice(0, at), s.slice(at + 1));
}

/**
 * RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent. An invalid value
 * counts as 0 and is removed, so contacts never see a priority the server ignored.
 */
export function takePriority(stanza: XmlElement): number {
  const el = stanza.getChild("priority");
  if (!el) return 0;
  const text = el.text().trim();
  if (/^[+-]?\d{1,4}$/.test(text)) {
    const n = Number(text);
    if (n >= -128 && n <= 127) return n;
  }
  stanza.removeChildren("priority");
  return 0;
}

/** XEP-0082 date-time, UTC, without fractions. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A copy of a presence to keep for sending later (answers to probes, after an approval, to the
 * account's next resources), stamped with when it was sent (XEP-0203 §2): one delay only, ours.
 */
function stamped(presence: XmlElement, domain: string, ms: number): XmlElement {
  const copy = presence.clone().removeChildren("delay", NS_DELAY);
  // concat, not push: the copy is kept for the session's life, and a push would give its
  // children room for 16 more (about 130 bytes per session).
  copy.children = copy.children.concat(x("delay", { xmlns: NS_DELAY, from: domain, stamp: stamp(ms) }));
  return copy;
}

function addressed(stanza: XmlElement, from: Jid, to: Jid): XmlElement {
  const copy = stanza.clone();
  copy.attrs.from = from.toString();
  copy.attrs.to = to.toString();
  return copy;
}

/** A size-bounded map that forgets the least recently written entry first. */
class RecentMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}

export class PresenceBroker {
  /** The last unavailable presence of accounts that went offline, for answering probes (§4.3.2). */
  private readonly lastUnavailable: RecentMap<XmlElement>;

  constructor(
    private readonly svc: PresenceServices,
    private readonly roster: RosterApi,
    opts: { lastUnavailableCache: number },
  ) {
    this.lastUnavailable = new RecentMap(opts.lastUnavailableCache);
  }

  /** A presence with no 'to' and no type from a client: initial presence or an update (§4.2, §4.4). */
  async available(session: ClientSession, stanza: XmlElement): Promise<void> {
    const jid = session.jid!;
    const username = session.username!;
    const bare = jid.bare();
    const wasAvailable = isAvailable(session);
    const wasDeliverable = wasAvailable && session.priority >= 0;
    const presence = stanza.clone();
    const priority = takePriority(presence);
    presence.attrs.from = jid.toString();
    delete presence.attrs.to;
    // Broadcast now as sent; the kept copy carries the time it was sent.
    session.presence = stamped(presence, jid.domain, this.svc.clock.now());
    session.priority = priority;
    this.svc.sessions.updated(session);

    // The account's own resources, this one included: an entity is subscribed to itself (§4.2.2).
    for (const s of this.svc.sessions.availableOf(username)) s.send(addressed(presence, jid, bare));
    if (!wasAvailable) {
      for (const s of this.svc.sessions.availableOf(username)) {
        if (s !== session && s.presence) session.send(addressed(s.presence, s.jid!, jid));
      }
      await this.redeliverPending(session);
    }

    const { items } = await this.roster.get(username);
    for (const item of items) {
      if (!hasFrom(item.subscription)) continue;
      const contact = storedBareJid(item.jid);
      await this.svc.router.deliver(addressed(presence, jid, contact), jid, contact);
    }
    if (!wasAvailable) {
      // §4.3.1: probe the contacts the account is subscribed to. The probe comes from this
      // resource's full JID, so the answers reach only it: the account's other resources
      // already have the contacts' presence.
      for (const item of items) {
        if (!hasTo(item.subscription)) continue;
        await this.probe(jid, storedBareJid(item.jid));
      }
    }
    if (!wasDeliverable && priority >= 0 && !session.closed) {
      await this.svc.fire("session/available", { session });
    }
  }

  /**
   * Unavailable presence (§4.5): sent by the client (`stanza`), or implied when the session ended
   * (no stanza). Goes to the subscribers, the account's other resources and every entity that got
   * directed presence from this session.
   */
  async unavailable(session: ClientSession, stanza?: XmlElement): Promise<void> {
    const jid = session.jid!;
    const username = session.username!;
    const bare = jid.bare();
    // On a disconnect the session is already closed; what counts is whether it had sent presence.
    const wasAvailable = session.presence !== undefined;
    const presence = stanza ? stanza.clone() : x("presence", { type: "unavailable" });
    presence.removeChildren("priority");
    presence.attrs.from = jid.toString();
    delete presence.attrs.to;
    session.presence = undefined;
    session.priority = 0;
    this.svc.sessions.updated(session);

    const targets = new Map<string, Jid>();
    if (wasAvailable) {
      for (const s of this.svc.sessions.availableOf(username)) {
        if (s !== session) s.send(addressed(presence, jid, bare));
      }
      if (stanza && !session.closed) session.send(addressed(presence, jid, bare));
      if (this.svc.sessions.availableOf(username).length === 0) {
        this.lastUnavailable.set(username, stamped(presence, jid.domain, this.svc.clock.now()));
      }
      for (const item of (await this.roster.get(username)).items) {
        if (hasFrom(item.subscription)) targets.set(item.jid, storedBareJid(item.jid));
      }
    }
    for (const d of session.directedPresence) {
      const to = tryParseJid(d);
      if (to && !targets.has(d)) targets.set(d, to);
    }
    session.directedPresence.clear();
    for (const to of targets.values()) await this.svc.router.deliver(addressed(presence, jid, to), jid, to);
  }

  /**
   * Directed presence (§4.6): the router delivers it; the session remembers the target so it
   * gets unavailable presence later, unless it is a subscriber that gets the broadcast anyway.
   */
  async directed(session: ClientSession, stanza: XmlElement, to: Jid): Promise<void> {
    const key = to.toString();
    if (stanza.attrs.type === "unavailable") {
      session.directedPresence.delete(key);
      return;
    }
    const username = session.username!;
    if (to.local !== "" && to.bareString === session.jid?.bareString) return; // own resources get broadcasts
    if (isAvailable(session)) {
      const item = await this.roster.getItem(username, to.bareString);
      if (item && hasFrom(item.subscription)) return;
    }
    session.directedPresence.add(key);
  }

  /** Answers a presence probe to a local account (§4.3.2) without telling non-subscribers anything. */
  async answerProbe(from: Jid, user: Jid): Promise<void> {
    const username = this.svc.accountKey(user);
    const self = from.local === user.local && from.domain === user.domain;
    if (!self) {
      const item = await this.roster.getItem(username, from.bareString);
      if (!item || !hasFrom(item.subscription)) {
        // Also the answer for accounts that do not exist; never a pre-approval cancellation.
        const contact = from.bare();
        const refusal = x("presence", {
          type: "unsubscribed",
          from: user.toString(),
          to: contact.toString(),
        });
        await this.svc.router.deliver(refusal, user, contact);
        return;
      }
    }
    const available = this.svc.sessions.availableOf(username);
    for (const s of available) {
      await this.svc.router.deliver(addressed(s.presence!, s.jid!, from), s.jid!, from);
    }
    if (available.length > 0) return;
    const last = this.lastUnavailable.get(username);
    if (last) {
      const lastFrom = tryParseJid(last.attrs.from) ?? user;
      await this.svc.router.deliver(addressed(last, lastFrom, from), lastFrom, from);
    } else {
      await this.svc.router.deliver(
        x("presence", { type: "unavailable", from: user.toString(), to: from.toString() }),
        user,
        from,
      );
    }
  }

  /** A presence probe (§4.3) from `from` (a full JID: only it gets the answer; a bare JID: every available resource) to `contact`. */
  async probe(from: Jid, contact: Jid): Promise<void> {
    const probe = x("presence", { type: "probe", from: from.toString(), to: contact.toString() });
    await this.svc.router.deliver(probe, from, contact);
  }

  /**
   * Presence from each available resource of `username` to `contact`: current presence after a
   * subscription was approved (§3.1.5), unavailable after it was cancelled (§3.2.2, §3.3.3).
   */
  async sendPresenceOf(username: string, contact: Jid, kind: "available" | "unavailable"): Promise<void> {
    for (const s of this.svc.sessions.availableOf(username)) {
      const stanza = kind === "available" && s.presence ? s.presence : x("presence", { type: "unavailable" });
      await this.svc.router.deliver(addressed(stanza, s.jid!, contact), s.jid!, contact);
    }
  }

  /** Presence (available, unavailable or error) to a local bare JID: every available resource (RFC 6121 §8.5.2.1.1). */
  deliverToAccount(stanza: XmlElement, username: string): void {
    for (const s of this.svc.sessions.availableOf(username)) s.send(stanza);
  }

  /** Presence to a full JID: that resource if it is connected, otherwise nothing (§8.5.3). */
  deliverToResource(stanza: XmlElement, to: Jid): void {
    const s = this.svc.sessions.get(to.local, to.resource, to.domain);
    if (s && !s.closed) s.send(stanza);
  }

  forget(username: string): void {
    this.lastUnavailable.delete(username);
  }

  /** Subscription requests still unanswered go to each resource that becomes available (§3.1.3). */
  private async redeliverPending(session: ClientSession): Promise<void> {
    for (const p of await this.svc.storage.roster.getPending(session.username!)) {
      const stanza = parseElement(p.stanza);
      if (stanza && stanza.name === "presence") session.send(stanza);
    }
  }
}
