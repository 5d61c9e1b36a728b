/**
 * The multi-user chat service (XEP-0045) behind the route of its domain: every stanza to
 * the service, a room or an occupant comes through `deliver`, and everything the rooms send
 * goes out through the router (to local sessions, other services, or federation).
 */

import { randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { Logger } from "pino";
import type { Clock } from "../../core/clock.js";
import { StanzaError } from "../../core/errors.js";
import { iqRequestPayload } from "../../core/iq.js";
import { type Jid, JidError, parseJid, resourceAsWritten } from "../../core/jid.js";
import { KeyedLock } from "../../core/keyed-lock.js";
import { failureKind, LogThrottle } from "../../core/log-throttle.js";
import type { Router } from "../../core/router.js";
import { roomWithin } from "../../core/storage/append-room.js";
import {
  type ArchivedMessage,
  ArchiveIdNotFound,
  type DocumentStore,
  type MessageArchiveStore,
  type MessageQuery,
} from "../../core/storage/types.js";
import { timeOrderedId } from "../../core/time-ordered-id.js";
import { writtenTo } from "../../core/written-address.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";
import {
  NS_CLIENT,
  NS_CONFERENCE,
  NS_DATA,
  NS_DELAY,
  NS_DISCO_INFO,
  NS_DISCO_ITEMS,
  NS_FORWARD,
  NS_MAM,
  NS_MUC,
  NS_MUC_ADMIN,
  NS_MUC_OWNER,
  NS_MUC_USER,
  NS_PING,
  NS_RSM,
  NS_SID,
  NS_STANZAS,
} from "../../core/xml/namespaces.js";
import { storageHint } from "../../core/xml/storage-hints.js";
import { parseQuery, queryForm } from "../mam/index.js";
import type { MucConfig } from "./config.js";
import { applyConfigForm, configForm, roomFeatures, roomInfoForm } from "./forms.js";
import {
  AFFILIATIONS,
  type Affiliation,
  affiliationRank,
  checkAffiliationChange,
  checkRoleChange,
  defaultConfig,
  type HistoryEntry,
  type Occupant,
  ROLES,
  type Role,
  Room,
  type RoomConfig,
  type StoredRoom,
} from "./room.js";

export interface MucServiceDeps {
  /** The service's domain. */
  domain: string;
  settings: MucConfig;
  router: Router;
  clock: Clock;
  log: Logger;
  rooms: DocumentStore<StoredRoom>;
  archive: MessageArchiveStore;
  /** Longest a room message waits for room in a full archive before it goes on unarchived. */
  archiveMaxWaitMs: number;
  /** Holds the server's admin role (a local account) or is listed in muc.admins. */
  isServiceAdmin(user: Jid): Promise<boolean>;
  /** Archive results per page: without RSM <max/>, and at most. */
  pageSizes: { default: number; max: number };
  /** A room ended here (a temporary one emptied, one destroyed): in a cluster, its name is free again. */
  ended?(room: string): void;
}

/** Errors from an occupant's own address that mean it is gone (it is then removed, status 333). */
const GONE_CONDITIONS = new Set<string>([
  "gone",
  "item-not-found",
  "recipient-unavailable",
  "redirect",
  "remote-server-not-found",
  "remote-server-timeout",
  "service-unavailable",
]);

const FORWARDED_IQ_TIMEOUT_MS = 60_000;

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

/** A presence as the room keeps it: its payload, without MUC elements and addresses. */
function cleanPresence(stanza: XmlElement): XmlElement {
  const p = x("presence");
  for (const c of stanza.children) {
    if (typeof c === "string") continue;
    const ns = c.attrs.xmlns;
    if (c.name === "x" && (ns === NS_MUC || ns === NS_MUC_USER)) continue;
    p.children.push(c.clone());
  }
  return p;
}

/** XEP-0045 §7.13: the form of a voice request. */
const NS_MUC_REQUEST = "http://jabber.org/protocol/muc#request";
/** XEP-0045 §7.10: nick registration (jabber:iq:register on the room) and its form. */
const NS_REGISTER = "jabber:iq:register";
const NS_MUC_REGISTER = "http://jabber.org/protocol/muc#register";

/** A data form's values by field. */
function formValues(form: XmlElement): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of form.getChildren("field"))
    if (f.attrs.var !== undefined)
      out.set(
        f.attrs.var,
        f.getChildren("value").map((v) => v.text()),
      );
  return out;
}

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim())) throw new StanzaError("bad-request", `history ${name}: not a number`);
  return Number(value.trim());
}

type HistoryLimits = Parameters<Room["historyFor"]>[0];

/** The history a joiner asks for (§7.2.15), from the <history/> of its join's <x/>. */
function historyLimits(join: XmlElement | undefined): HistoryLimits {
  const history = join?.getChild("history");
  if (!history) return {};
  const since = history.attrs.since !== undefined ? Date.parse(history.attrs.since) : undefined;
  if (since !== undefined && Number.isNaN(since))
    throw new StanzaError("bad-request", "history since: not a XEP-0082 DateTime");
  return {
    maxstanzas: int(history.attrs.maxstanzas, "maxstanzas"),
    maxchars: int(history.attrs.maxchars, "maxchars"),
    seconds: int(history.attrs.seconds, "seconds"),
    since,
  };
}

/**
 * What an occupant gets when the room goes because its service does (XEP-0045 status 332):
 * its own unavailable presence, sent from its occupant JID.
 */
export function serviceGonePresence(affiliation: Affiliation): XmlElement {
  return x(
    "presence",
    { type: "unavailable" },
    x(
      "x",
      { xmlns: NS_MUC_USER },
      x("item", { affiliation, role: "none" }),
      x("status", { code: "110" }),
      x("status", { code: "332" }),
    ),
  );
}

interface PresenceDetails {
  type?: "unavailable";
  codes?: number[];
  /** The new nick (303). */
  nick?: string;
  /** Who made the change: its nick, and the real JID of the session, shown to those who see real JIDs. */
  actor?: { nick: string; jid: string };
  reason?: string;
  destroy?: XmlElement;
}

export class MucService {
  readonly rooms = new Map<string, Room>();
  /** Full JID of a joined session → the rooms it is in. */
  private readonly joined = new Map<string, Set<Room>>();
  /** IQs forwarded between occupants, by the id the room gave them. */
  private readonly forwarded = new Map<
    string,
    { asker: Jid; askerId: string; target: string; from: Jid; timer: NodeJS.Timeout }
  >();
  readonly stats = { messages: 0, joins: 0, created: 0, destroyed: 0 };
  /**
   * The last administrative IQ of each room (owner, admin, registration), which the next one
   * waits for: they are answered in the order they arrived, so a list read after a change
   * sees it and two changes never interleave their reads and writes.
   */
  private readonly adminTurns = new KeyedLock();
  private readonly serviceJid: Jid;
  /** A full disk fails every archive append: one line per kind of failure and window. */
  private readonly archiveFailures: LogThrottle;

  constructor(private readonly d: MucServiceDeps) {
    this.serviceJid = parseJid(d.domain);
    this.archiveFailures = new LogThrottle(d.log);
  }

  /** Reads the persistent rooms. */
  async load(): Promise<void> {
    const defaults = this.newConfig();
    for (const { key, value } of await this.d.rooms.list()) {
      try {
        const jid = parseJid(key);
        this.rooms.set(jid.local, Room.fromStored(jid.toString(), value, defaults));
      } catch (err) {
        this.d.log.warn({ err, room: key }, "a stored room could not be read");
      }
    }
  }

  /**
   * This node now serves the room `localpart` (in a cluster: it claimed the room, or took it
   * over from a node that died): a persistent room is read again from storage, as its last
   * owner left it, and its history again from the archive; one not stored starts afresh.
   */
  async adopt(localpart: string): Promise<void> {
    const held = this.rooms.get(localpart);
    // Already served here with occupants (this node created it a moment ago).
    if (held && held.occupants.size > 0) return;
    const jid = parseJid(`${localpart}@${this.d.domain}`).toString();
    const stored = await this.d.rooms.get(jid);
    if (this.rooms.get(localpart)?.occupants.size) return;
    if (stored) this.rooms.set(localpart, Room.fromStored(jid, stored, this.newConfig()));
    else this.rooms.delete(localpart);
  }

  /**
   * Whether the room ended with a node that is gone, as a temporary room ends with its last
   * occupant: it is not stored (a persistent room is, and is read back by `adopt`), and this
   * node holds no occupants of it.
   */
  async endedWithItsNode(localpart: string): Promise<boolean> {
    if (this.rooms.get(localpart)?.occupants.size) return false;
    const jid = parseJid(`${localpart}@${this.d.domain}`).toString();
    return (await this.d.rooms.get(jid)) === undefined;
  }

  /**
   * This node took the room over from a node that is gone. Its occupants did not move with it
   * (they were told they left, 332): a temporary room ended there, and its archive goes as at
   * its normal end, before the room's next life archives anything. A persistent room keeps
   * its archive (`adopt` reads it back).
   */
  async takenOver(localpart: string): Promise<void> {
    if (!(await this.endedWithItsNode(localpart))) return;
    const jid = parseJid(`${localpart}@${this.d.domain}`).toString();
    const removed = await this.d.archive.remove(jid);
    if (removed > 0)
      this.d.log.info(
        { room: jid, removed },
        "the archive of a temporary room whose node is gone was removed",
      );
  }

  /**
   * Another node serves the room now (this node was cut off from the cluster long enough to
   * be taken for dead): its occupants are told they left because the service went (332), as
   * at a shutdown, and this node forgets the room; a persistent one stays stored.
   */
  async evict(localpart: string): Promise<void> {
    const room = this.rooms.get(localpart);
    if (!room) return;
    this.rooms.delete(localpart);
    const sends: Promise<void>[] = [];
    for (const o of room.occupants.values()) {
      for (const jid of o.sessions.keys()) this.forgetSession(room, jid);
      for (const s of o.sessions.values())
        sends.push(
          this.send(serviceGonePresence(room.effectiveAffiliation(o)), this.occupantJid(room, o.nick), s.jid),
        );
    }
    room.occupants.clear();
    await Promise.all(sends);
  }

  /**
   * Occupants' sessions that ended without a word (their cluster node died) leave their
   * rooms: an occupant with no session left is removed with status 333, as for an occupant
   * whose address reports it gone.
   */
  async dropSessions(gone: (jid: Jid) => boolean): Promise<void> {
    for (const room of [...this.rooms.values()]) {
      for (const occupant of [...room.occupants.values()]) {
        const dead = [...occupant.sessions.values()].filter((s) => gone(s.jid));
        if (dead.length === 0) continue;
        for (const s of dead) {
          occupant.sessions.delete(s.jid.toString());
          this.forgetSession(room, s.jid.toString());
        }
        if (occupant.sessions.size === 0) await this.removeOccupant(room, occupant, { codes: [333] });
      }
    }
  }

  /** Waits for the room writes in flight. */
  async flush(): Promise<void> {
    await Promise.all([...this.rooms.values()].map((r) => r.saving));
  }

  occupantCount(): number {
    let n = 0;
    for (const r of this.rooms.values()) n += r.occupants.size;
    return n;
  }

  private newConfig(): RoomConfig {
    const s = this.d.settings;
    return defaultConfig(
      s.roomDefaults,
      s.maxOccupantsPerRoom,
      Math.min(s.defaultHistoryLength, s.maxHistoryLength),
    );
  }

  // ---- sending ----

  private send(stanza: XmlElement, from: Jid, to: Jid): Promise<void> {
    stanza.attrs.from = from.toString();
    stanza.attrs.to = to.toString();
    try {
      const r = this.d.router.deliver(stanza, from, to);
      return r
        ? r.catch((err: unknown) => this.d.log.error({ err }, "delivering a room stanza failed"))
        : Promise.resolve();
    } catch (err) {
      this.d.log.error({ err }, "delivering a room stanza failed");
      return Promise.resolve();
    }
  }

  /** A nickname as the room's occupant JIDs take it; a malformed one is jid-malformed. */
  private nicknameOf(room: Room, raw: string): string {
    try {
      return this.roomJid(room).withResource(raw).resource;
    } catch (err) {
      if (err instanceof JidError) throw new StanzaError("jid-malformed", `not a nickname: ${err.message}`);
      throw err;
    }
  }

  private roomJid(room: Room): Jid {
    return parseJid(room.jid);
  }

  private occupantJid(room: Room, nick: string): Jid {
    return this.roomJid(room).withResource(nick);
  }

  // ---- the route ----

  deliver(stanza: XmlElement, from: Jid, to: Jid): void | Promise<void> {
    if (to.local === "") return this.toService(stanza, from);
    // The room generates the errors for its own and its occupants' addresses, and says so
    // with 'by' (XEP-0045's error examples, RFC 6120 §8.3.2).
    const room = to.bare().toString();
    const byRoom = (err: unknown): never => {
      throw err instanceof StanzaError ? err.generatedBy(room) : err;
    };
    return (to.resource === "" ? this.toRoom(stanza, from, to) : this.toOccupant(stanza, from, to)).catch(
      byRoom,
    );
  }

  private async toService(stanza: XmlElement, from: Jid): Promise<void> {
    if (stanza.name !== "iq") {
      if (stanza.name === "message" && stanza.attrs.type !== "error" && stanza.attrs.type !== "groupchat")
        throw new StanzaError("service-unavailable");
      return;
    }
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") return this.forwardedReply(stanza, from);
    const payload = iqRequestPayload(stanza);
    let answer: XmlElement | undefined;
    if (type === "get" && payload.attrs.xmlns === NS_DISCO_INFO && payload.name === "query") {
      if (payload.attrs.node !== undefined) throw new StanzaError("item-not-found", "no such node");
      answer = x(
        "query",
        { xmlns: NS_DISCO_INFO },
        x("identity", { category: "conference", type: "text", name: this.d.settings.name }),
        ...[NS_MUC, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING].map((f) => x("feature", { var: f })),
      );
    } else if (type === "get" && payload.attrs.xmlns === NS_DISCO_ITEMS && payload.name === "query") {
      if (payload.attrs.node !== undefined) throw new StanzaError("item-not-found", "no such node");
      answer = x(
        "query",
        { xmlns: NS_DISCO_ITEMS },
        ...this.publicRooms().map((r) => x("item", { jid: r.jid, name: r.config.name || r.localpart })),
      );
    } else if (type === "get" && payload.attrs.xmlns === NS_PING && payload.name === "ping") {
      answer = undefined;
    } else {
      throw new StanzaError("service-unavailable");
    }
    await this.result(stanza, this.serviceJid, from, answer);
  }

  /** Rooms listed in the directory: public and configured. */
  publicRooms(): Room[] {
    return [...this.rooms.values()]
      .filter((r) => r.config.public && !r.locked)
      .sort((a, b) => a.jid.localeCompare(b.jid));
  }

  private result(iq: XmlElement, from: Jid, to: Jid, payload?: XmlElement): Promise<void> {
    return this.send(x("iq", { type: "result", id: iq.attrs.id }, payload), from, to);
  }

  private async toRoom(stanza: XmlElement, from: Jid, to: Jid): Promise<void> {
    const room = this.rooms.get(to.local);
    const type = stanza.attrs.type;
    if (stanza.name === "presence") {
      // A presence without a nick is no join (§7.2.1): only an available one gets an error.
      if (type === undefined) throw new StanzaError("jid-malformed", "a room nickname is needed to join");
      // Unavailable or error presence from an occupant's session says the same to the room
      // as to its occupant JID: it leaves, or it is gone.
      if (room && type === "unavailable") await this.leave(room, from, stanza);
      else if (room && type === "error") await this.errorFrom(room, from, stanza);
      return;
    }
    if (stanza.name === "message") {
      if (type === "error") {
        if (room) await this.errorFrom(room, from, stanza);
        return;
      }
      if (!room) throw new StanzaError("item-not-found", "no such room");
      if (type === "groupchat") return this.groupchat(room, from, stanza);
      const user = stanza.getChild("x", NS_MUC_USER);
      if (user && (user.getChild("invite") || user.getChild("decline")))
        return this.invitations(room, from, user, stanza.attrs.id);
      const form = stanza.getChild("x", NS_DATA);
      if (form && formValues(form).get("FORM_TYPE")?.[0] === NS_MUC_REQUEST)
        return this.voiceRequest(room, from, form);
      throw new StanzaError(
        "bad-request",
        "a message to a room is of type groupchat, an invitation or a voice request",
      );
    }
    // iq
    if (type !== "get" && type !== "set") return this.forwardedReply(stanza, from);
    if (!room) throw new StanzaError("item-not-found", "no such room");
    const payload = iqRequestPayload(stanza);
    const answer = async () => {
      const a = await this.roomIq(room, type, payload, from, stanza);
      if (a !== null) await this.result(stanza, this.roomJid(room), from, a);
    };
    const ns = payload.attrs.xmlns;
    if (ns !== NS_MUC_OWNER && ns !== NS_MUC_ADMIN && ns !== NS_REGISTER) return answer();
    return this.adminTurns.run(room.localpart, answer);
  }

  private async toOccupant(stanza: XmlElement, from: Jid, to: Jid): Promise<void> {
    if (stanza.name === "presence") return this.presence(stanza, from, to);
    const room = this.rooms.get(to.local);
    const type = stanza.attrs.type;
    if (stanza.name === "message") {
      if (type === "error") {
        if (room) await this.errorFrom(room, from, stanza);
        return;
      }
      if (!room) throw new StanzaError("item-not-found", "no such room");
      return this.privateMessage(room, from, to.resource, stanza);
    }
    if (type !== "get" && type !== "set") return this.forwardedReply(stanza, from);
    return this.occupantIq(room, from, to.resource, stanza);
  }

  // ---- presence: join, change, leave ----

  private async presence(stanza: XmlElement, from: Jid, to: Jid): Promise<void> {
    const type = stanza.attrs.type;
    const room = this.rooms.get(to.local);
    if (type === "error") {
      if (room) await this.errorFrom(room, from, stanza);
      return;
    }
    if (type === "unavailable") {
      if (room) await this.leave(room, from, stanza);
      return;
    }
    if (type === "probe" && room) return this.probe(room, from, to.resource);
    // Subscriptions mean nothing to a room.
    if (type !== undefined) return;
    const occupant = room?.occupantOf(from.toString());
    if (room && occupant) {
      if (occupant.nick !== to.resource) return this.changeNick(room, occupant, from, to.resource, stanza);
      const join = stanza.getChild("x", NS_MUC);
      const limits = historyLimits(join);
      occupant.sessions.get(from.toString())!.presence = cleanPresence(stanza);
      // §7.2.1: a join from a session already in the room is a client that lost track of it;
      // it gets what a joiner gets (the others see the presence update).
      if (join) return this.enter(room, occupant, from, limits, false, nickChanged(stanza, to));
      await this.broadcastPresence(room, occupant, {});
      return;
    }
    return this.join(stanza, from, to);
  }

  /**
   * A presence probe to an occupant JID (§17.3 lets a service answer them): an occupant gets
   * the occupant's presence as it would see it, or unavailable presence when nobody uses the
   * nick (with the item of the member who registered it); anyone else is refused, as a probe
   * is no way to look into a room from outside (Prosody answers the same way).
   */
  private async probe(room: Room, from: Jid, nick: string): Promise<void> {
    const asker = room.occupantOf(from.toString());
    if (!asker)
      throw new StanzaError("not-acceptable", "only occupants may probe the room's occupants", {
        type: "cancel",
      });
    const target = room.occupants.get(nick);
    if (target) {
      await this.send(this.presenceOf(room, target, asker, {}), this.occupantJid(room, nick), from);
      return;
    }
    const holder = room.nickHolder(nick);
    const item =
      holder === undefined
        ? undefined
        : x("item", {
            nick,
            affiliation: room.affiliationOf(holder),
            role: "none",
            ...(room.seesRealJids(asker) ? { jid: holder } : {}),
          });
    await this.send(
      x("presence", { type: "unavailable" }, x("x", { xmlns: NS_MUC_USER }, item)),
      this.occupantJid(room, nick),
      from,
    );
  }

  private async mayCreate(from: Jid, admin: boolean): Promise<void> {
    const s = this.d.settings;
    if (admin) return;
    const local = this.d.router.isLocalDomain(from.domain);
    if (s.roomCreation === "admins" || (s.roomCreation === "local" && !local))
      throw new StanzaError("not-allowed", "you may not create rooms on this service");
    if (s.maxRoomsPerUser > 0) {
      const bare = from.bareString;
      let owned = 0;
      for (const r of this.rooms.values()) if (r.affiliationOf(bare) === "owner") owned++;
      if (owned >= s.maxRoomsPerUser)
        throw new StanzaError("resource-constraint", `you own ${owned} rooms, the most allowed`, {
          type: "wait",
        });
    }
  }

  private async join(stanza: XmlElement, from: Jid, to: Jid): Promise<void> {
    const nick = to.resource;
    const bare = from.bareString;
    // What is asked is checked before anything is created.
    const join = stanza.getChild("x", NS_MUC);
    const limits = historyLimits(join);

    const admin = await this.d.isServiceAdmin(from);
    const existing = this.rooms.get(to.local);
    if (existing) await this.loadHistory(existing);
    else await this.mayCreate(from, admin);

    // From here on nothing waits, so concurrent joins see each other.
    let room = this.rooms.get(to.local);
    let created = false;
    // Destroyed while this join waited: creating it again was not checked.
    if (!room && existing) throw new StanzaError("item-not-found", "the room was just destroyed");
    if (!room) {
      room = new Room(to.bareString, this.newConfig(), this.d.clock.now());
      room.setAffiliation(bare, "owner");
      room.locked = this.d.settings.lockNewRooms;
      room.historyReady = Promise.resolve();
      this.rooms.set(to.local, room);
      created = true;
      this.stats.created++;
      if (!room.locked) this.save(room);
    }
    const affiliation: Affiliation = admin ? "owner" : room.affiliationOf(bare);
    const holder = room.occupants.get(nick);
    if (room.locked && affiliation !== "owner")
      throw new StanzaError("item-not-found", "the room is locked until its owner configures it");
    if (affiliation === "outcast") throw new StanzaError("forbidden", "you are banned from this room");
    if (room.config.membersOnly && affiliationRank(affiliation) < 2)
      throw new StanzaError("registration-required", "this room is for members only");
    if (room.config.password !== "" && affiliation !== "owner") {
      const given = join?.getChildText("password");
      if (given !== room.config.password)
        throw new StanzaError("not-authorized", "a password is needed to enter this room");
    }
    if (holder && holder.bare !== bare) throw new StanzaError("conflict", "that nickname is taken");
    const registrant = room.nickHolder(nick);
    if (registrant !== undefined && registrant !== bare)
      throw new StanzaError("conflict", "that nickname is registered to someone else");
    if (!holder && affiliationRank(affiliation) < 3 && room.occupants.size >= room.config.maxOccupants)
      throw new StanzaError("service-unavailable", "the room is full", { type: "wait" });

    const occupant: Occupant = holder ?? {
      nick,
      bare,
      role: room.defaultRole(affiliation),
      serviceAdmin: admin,
      sessions: new Map(),
    };
    room.occupants.set(nick, occupant);
    occupant.sessions.set(from.toString(), { jid: from, presence: cleanPresence(stanza) });
    room.byRealJid.set(from.toString(), nick);
    const rooms = this.joined.get(from.toString()) ?? new Set<Room>();
    this.joined.set(from.toString(), rooms);
    rooms.add(room);
    this.stats.joins++;
    await this.enter(room, occupant, from, limits, created, nickChanged(stanza, to));
  }

  /**
   * What a session entering the room gets: the others' presence first, then its own (to
   * everyone), then the history, then the subject (§7.2.3–§7.2.16).
   */
  private async enter(
    room: Room,
    occupant: Occupant,
    from: Jid,
    limits: HistoryLimits,
    created: boolean,
    nickChanged: boolean,
  ): Promise<void> {
    for (const other of room.occupants.values()) {
      if (other === occupant) continue;
      await this.send(this.presenceOf(room, other, occupant, {}), this.occupantJid(room, other.nick), from);
    }
    const selfCodes = [110];
    if (room.config.whois === "anyone") selfCodes.push(100);
    if (room.config.archive) selfCodes.push(170);
    if (created) selfCodes.push(201);
    // §7.2.9: the nick differs from the one asked for (preparing it dropped what stringprep
    // maps to nothing, such as an emoji's variation selector).
    if (nickChanged) selfCodes.push(210);
    await this.broadcastPresence(room, occupant, {}, { jid: from, codes: selfCodes });
    const roomJid = this.roomJid(room);
    for (const entry of room.historyFor(limits, this.d.clock.now())) {
      const m = entry.stanza.clone();
      m.children.push(x("delay", { xmlns: NS_DELAY, from: room.jid, stamp: stamp(entry.at) }));
      await this.send(m, parseJid(m.attrs.from!), from);
    }
    const subject = room.subject;
    const subjectFrom = subject?.by ? this.occupantJid(room, subject.by) : roomJid;
    await this.send(
      x(
        "message",
        { type: "groupchat", id: randomBytes(6).toString("base64url") },
        x("subject", null, subject?.text ?? ""),
        subject ? x("delay", { xmlns: NS_DELAY, from: room.jid, stamp: stamp(subject.at) }) : undefined,
      ),
      subjectFrom,
      from,
    );
  }

  /** Reads back the archived history of a room after a restart, once. */
  private loadHistory(room: Room): Promise<void> {
    room.historyReady ??= (async () => {
      if (!room.config.archive || room.config.historyLength === 0) return;
      const { messages } = await this.d.archive.query({
        owner: room.jid,
        limit: room.config.historyLength,
        newestFirst: true,
      });
      const entries: HistoryEntry[] = [];
      for (const m of messages.reverse()) {
        const stanza = parseElement(m.stanza);
        if (stanza) entries.push({ stanza, at: m.at, chars: m.stanza.length });
      }
      room.history = [...entries, ...room.history];
    })().catch((err: unknown) =>
      this.d.log.error({ err, room: room.jid }, "reading a room's history failed"),
    );
    return room.historyReady;
  }

  /**
   * The presence of `subject` as `viewer` sees it: from the occupant JID, with the muc#user
   * item (the real JID only to those who may see it) and status codes.
   */
  private presenceOf(
    room: Room,
    subject: Occupant,
    viewer: Occupant | undefined,
    d: PresenceDetails,
  ): XmlElement {
    let p: XmlElement;
    if (d.type === "unavailable") p = x("presence", { type: "unavailable" });
    else {
      const last = [...subject.sessions.values()].at(-1);
      p = last ? last.presence.clone() : x("presence");
    }
    // One's own real JID is no secret to oneself, whatever the room's anonymity. Whoever may
    // see real JIDs gets an item per session of a nick used from several resources, the
    // newest first (as Prosody sends them); the others one item without a JID.
    const showsJids = room.seesRealJids(viewer) || viewer === subject;
    const jids = showsJids ? [...subject.sessions.keys()].reverse() : [];
    const items = (jids.length > 0 ? jids : [undefined]).map((jid) => {
      const item = x("item", {
        affiliation: room.effectiveAffiliation(subject),
        role: d.type === "unavailable" && d.nick === undefined ? "none" : subject.role,
        ...(jid !== undefined ? { jid } : {}),
        ...(d.nick !== undefined ? { nick: d.nick } : {}),
      });
      if (d.actor !== undefined)
        item.append(
          x("actor", { nick: d.actor.nick, ...(room.seesRealJids(viewer) ? { jid: d.actor.jid } : {}) }),
        );
      if (d.reason !== undefined && d.reason !== "") item.append(x("reason", null, d.reason));
      return item;
    });
    // Status codes of the event (201, 303, 321, 333…) and <destroy/> come before the item and
    // "this is you" (110) after it, as Prosody orders them: the order means nothing in
    // XEP-0045, but scripted clients written against Prosody compare it.
    const codes = d.codes ?? [];
    const ux = x("x", { xmlns: NS_MUC_USER });
    for (const code of codes) if (code !== 110) ux.append(x("status", { code: String(code) }));
    if (d.destroy) ux.append(d.destroy.clone());
    for (const item of items) ux.append(item);
    if (codes.includes(110)) ux.append(x("status", { code: "110" }));
    p.children.push(ux);
    return p;
  }

  /**
   * Sends `subject`'s presence to every occupant; its own sessions get status 110 too, and
   * the session `self.jid` (a joining one) the codes in `self.codes` instead.
   */
  private async broadcastPresence(
    room: Room,
    subject: Occupant,
    d: PresenceDetails,
    self?: { jid: Jid; codes: number[] },
    extraRecipients: Occupant[] = [],
  ): Promise<void> {
    const from = this.occupantJid(room, subject.nick);
    const sends: Promise<void>[] = [];
    for (const viewer of [...room.occupants.values(), ...extraRecipients]) {
      for (const s of viewer.sessions.values()) {
        let codes = d.codes ?? [];
        if (viewer === subject)
          codes = self && s.jid.equals(self.jid) ? [...codes, ...self.codes] : [...codes, 110];
        sends.push(this.send(this.presenceOf(room, subject, viewer, { ...d, codes }), from, s.jid));
      }
    }
    await Promise.all(sends);
  }

  /** A new moderator of a semi-anonymous room gets everyone's presence again, now with real JIDs. */
  private async revealTo(room: Room, moderator: Occupant): Promise<void> {
    if (room.config.whois === "anyone") return;
    for (const other of room.occupants.values()) {
      if (other === moderator) continue;
      const from = this.occupantJid(room, other.nick);
      for (const s of moderator.sessions.values())
        await this.send(this.presenceOf(room, other, moderator, {}), from, s.jid);
    }
  }

  private forgetSession(room: Room, jid: string): void {
    room.byRealJid.delete(jid);
    const rooms = this.joined.get(jid);
    if (rooms) {
      rooms.delete(room);
      if (rooms.size === 0) this.joined.delete(jid);
    }
  }

  private async leave(room: Room, from: Jid, stanza?: XmlElement): Promise<void> {
    const occupant = room.occupantOf(from.toString());
    if (!occupant) return;
    const session = from.toString();
    if (occupant.sessions.size > 1) {
      // One resource of several leaves: it is told it left, with its own item only; the nick
      // stays, and everyone gets its presence with the sessions that remain.
      const alone: Occupant = {
        ...occupant,
        sessions: new Map([[session, occupant.sessions.get(session)!]]),
      };
      const unavailable = this.presenceOf(room, alone, alone, { type: "unavailable", codes: [110] });
      occupant.sessions.delete(session);
      this.forgetSession(room, session);
      await this.send(unavailable, this.occupantJid(room, occupant.nick), from);
      await this.broadcastPresence(room, occupant, {});
      return;
    }
    const status = stanza?.getChild("status");
    await this.removeOccupant(room, occupant, { type: "unavailable" }, status);
  }

  /**
   * Removes an occupant (all its sessions): everyone, itself included (with 110), gets its
   * unavailable presence with the given details; an empty temporary room goes away.
   */
  private async removeOccupant(
    room: Room,
    occupant: Occupant,
    d: PresenceDetails,
    status?: XmlElement,
  ): Promise<void> {
    room.occupants.delete(occupant.nick);
    for (const jid of occupant.sessions.keys()) this.forgetSession(room, jid);
    const from = this.occupantJid(room, occupant.nick);
    const sends: Promise<void>[] = [];
    for (const viewer of [...room.occupants.values(), occupant]) {
      for (const s of viewer.sessions.values()) {
        const p = this.presenceOf(room, occupant, viewer, {
          ...d,
          type: "unavailable",
          codes: viewer === occupant ? [...(d.codes ?? []), 110] : (d.codes ?? []),
        });
        if (status) p.children.splice(0, 0, status.clone());
        sends.push(this.send(p, from, s.jid));
      }
    }
    await Promise.all(sends);
    this.dropIfEmpty(room);
  }

  /** A temporary room, or one never configured, ends with its last occupant. */
  private dropIfEmpty(room: Room): void {
    if (room.occupants.size > 0) return;
    if (room.config.persistent && !room.locked) return;
    this.rooms.delete(room.localpart);
    this.stats.destroyed++;
    this.forgetArchive(room);
    this.d.ended?.(room.jid);
  }

  private async changeNick(room: Room, occupant: Occupant, from: Jid, nick: string, stanza: XmlElement) {
    const holder = room.occupants.get(nick);
    if (holder && holder !== occupant) throw new StanzaError("conflict", "that nickname is taken");
    const registrant = room.nickHolder(nick);
    if (registrant !== undefined && registrant !== occupant.bare)
      throw new StanzaError("conflict", "that nickname is registered to someone else");
    // §7.6: unavailable from the old nick with 303 and the new nick, then available from the new one.
    await this.broadcastPresence(room, occupant, { type: "unavailable", codes: [303], nick });
    room.occupants.delete(occupant.nick);
    occupant.nick = nick;
    room.occupants.set(nick, occupant);
    for (const jid of occupant.sessions.keys()) room.byRealJid.set(jid, nick);
    occupant.sessions.get(from.toString())!.presence = cleanPresence(stanza);
    await this.broadcastPresence(room, occupant, {});
  }

  /** An error from an occupant's own address that says it is gone removes it (status 333). */
  private async errorFrom(room: Room, from: Jid, stanza: XmlElement): Promise<void> {
    const occupant = room.occupantOf(from.toString());
    if (!occupant) return;
    const error = stanza.getChild("error");
    const condition = error?.elements().find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== "text")?.name;
    if (condition === undefined || !GONE_CONDITIONS.has(condition)) return;
    if (occupant.sessions.size > 1) {
      // One session of several is gone: the nick stays, with the sessions that remain.
      occupant.sessions.delete(from.toString());
      this.forgetSession(room, from.toString());
      await this.broadcastPresence(room, occupant, {});
      return;
    }
    // The others see why it went: the error's condition and text.
    const text = error?.getChild("text", NS_STANZAS)?.text();
    const why = `Kicked: ${condition.replaceAll("-", " ")}${text ? `: ${text}` : ""}`;
    await this.removeOccupant(room, occupant, { codes: [333] }, x("status", null, why));
  }

  /**
   * The service is shutting down (status 332): every occupant is told it left; the
   * rooms are empty afterwards (persistent ones stay stored, temporary ones end, their
   * archives with them).
   */
  async shutdown(): Promise<void> {
    const sends: Promise<void>[] = [];
    for (const room of [...this.rooms.values()]) {
      const occupants = [...room.occupants.values()];
      room.occupants.clear();
      for (const o of occupants) {
        for (const jid of o.sessions.keys()) this.forgetSession(room, jid);
        const p = serviceGonePresence(room.effectiveAffiliation(o));
        for (const s of o.sessions.values())
          sends.push(this.send(p.clone(), this.occupantJid(room, o.nick), s.jid));
      }
      if (!room.config.persistent || room.locked) {
        this.rooms.delete(room.localpart);
        sends.push(this.removeArchive(room));
      }
    }
    await Promise.all(sends);
  }

  /** A local session ended: it leaves every room it was in (the presence module normally said so already). */
  async sessionEnded(jid: Jid): Promise<void> {
    const rooms = this.joined.get(jid.toString());
    if (!rooms) return;
    for (const room of [...rooms]) await this.leave(room, jid);
  }

  // ---- messages ----

  private async groupchat(room: Room, from: Jid, stanza: XmlElement): Promise<void> {
    const occupant = room.occupantOf(from.toString());
    if (!occupant) throw new StanzaError("not-acceptable", "only occupants may send messages to the room");
    if (occupant.role === "visitor")
      throw new StanzaError("forbidden", "visitors have no voice in this room");
    const body = stanza.getChild("body");
    const subject = stanza.getChild("subject");
    // §8.1: with a body or a thread it is a message that happens to carry a subject.
    const subjectChange = subject !== undefined && !body && !stanza.getChild("thread");
    if (subjectChange) {
      if (!room.config.changeSubject && occupant.role !== "moderator")
        throw new StanzaError("forbidden", "only moderators may change the subject");
      room.subject = { text: subject.text(), by: occupant.nick, at: this.d.clock.now() };
      this.save(room);
    }
    const out = stanza.clone();
    delete out.attrs.to;
    delete out.attrs.from;
    // §3 rule 2 of XEP-0359: an id claiming the room is the room's to give.
    out.children = out.children.filter(
      (c) =>
        typeof c === "string" ||
        !(c.name === "stanza-id" && c.attrs.xmlns === NS_SID && c.attrs.by === room.jid),
    );
    // Kept in the history and the archive as a user's archive keeps messages: those with a
    // body, or a store hint (XEP-0334), unless they say not to; a subject change is the subject.
    const hint = storageHint(stanza);
    const keep = !subjectChange && hint !== "no-store" && (body !== undefined || hint === "store");
    let archived = room.config.archive;
    if (keep && room.config.archive) {
      // The archive's queue is full: the message waits for room before it takes its place in
      // the room's order (history, archive, delivery), so a flood goes at the storage's pace.
      const wait = roomWithin(this.d.archive, this.d.archiveMaxWaitMs);
      if (wait) {
        archived = await wait;
        if (!archived)
          this.archiveFailures.error(
            "archive-full",
            { room: room.jid, waitedMs: this.d.archiveMaxWaitMs },
            "the room archive did not take appends in time: a message went on without being archived",
          );
        if (room.occupantOf(from.toString()) !== occupant)
          throw new StanzaError("not-acceptable", "only occupants may send messages to the room");
      }
    }
    const from_ = this.occupantJid(room, occupant.nick);
    out.attrs.from = from_.toString();
    const now = this.d.clock.now();
    if (keep) {
      const id = timeOrderedId();
      out.children.push(x("stanza-id", { xmlns: NS_SID, id, by: room.jid }));
      const serialized = out.toString();
      if (room.config.historyLength > 0)
        room.addHistory({ stanza: out.clone(), at: now, chars: serialized.length });
      if (archived) {
        this.d.archive
          .append({
            id,
            owner: room.jid,
            peer: room.jid,
            peerResource: occupant.nick,
            at: now,
            direction: "in",
            stanza: serialized,
            text: body?.text() ?? "",
          })
          .catch((err: unknown) =>
            this.archiveFailures.error(
              failureKind(err),
              { err, room: room.jid },
              "archiving a room message failed",
            ),
          );
      }
      this.stats.messages++;
    }
    const sends: Promise<void>[] = [];
    for (const o of room.occupants.values())
      for (const s of o.sessions.values()) sends.push(this.send(out.clone(), from_, s.jid));
    await Promise.all(sends);
  }

  private async privateMessage(room: Room, from: Jid, nick: string, stanza: XmlElement): Promise<void> {
    const sender = room.occupantOf(from.toString());
    if (!sender) throw new StanzaError("not-acceptable", "only occupants may send private messages");
    if (stanza.attrs.type === "groupchat")
      throw new StanzaError("bad-request", "a groupchat message goes to the room, not to an occupant");
    const allow = room.config.allowPm;
    if (
      allow === "none" ||
      (allow === "moderators" && sender.role !== "moderator") ||
      (allow === "participants" && sender.role === "visitor")
    )
      throw new StanzaError("forbidden", "private messages are not allowed in this room");
    const target = room.occupants.get(nick);
    if (!target) throw new StanzaError("item-not-found", "no occupant with that nickname");
    const from_ = this.occupantJid(room, sender.nick);
    const sends: Promise<void>[] = [];
    for (const s of target.sessions.values()) {
      const m = stanza.clone();
      if (!m.getChild("x", NS_MUC_USER)) m.children.push(x("x", { xmlns: NS_MUC_USER }));
      sends.push(this.send(m, from_, s.jid));
    }
    await Promise.all(sends);
  }

  /**
   * Mediated invitations and declines (§7.8.2). The room's message keeps the sender's id (as
   * in the XEP's examples) and, for an invitation, carries a body for clients that do not
   * know invitations, as Prosody and ejabberd send.
   */
  private async invitations(room: Room, from: Jid, user: XmlElement, id: string | undefined): Promise<void> {
    const parse = (raw: string | undefined, what: string): Jid => {
      if (raw === undefined) throw new StanzaError("bad-request", `${what} needs a 'to' address`);
      try {
        return parseJid(raw);
      } catch (err) {
        if (err instanceof JidError) throw new StanzaError("jid-malformed", err.message);
        throw err;
      }
    };
    const roomJid = this.roomJid(room);
    for (const invite of user.getChildren("invite")) {
      const invitee = parse(invite.attrs.to, "an invitation");
      const inviter = room.occupantOf(from.toString());
      if (!inviter) throw new StanzaError("not-acceptable", "only occupants may invite");
      const rank = affiliationRank(room.effectiveAffiliation(inviter));
      if (room.config.membersOnly) {
        if (rank < 3 && !(room.config.allowInvites && rank >= 2))
          throw new StanzaError("forbidden", "you may not invite into this members-only room");
        if (
          affiliationRank(room.affiliationOf(invitee.bareString)) < 2 &&
          room.affiliationOf(invitee.bareString) !== "outcast"
        ) {
          room.setAffiliation(invitee.bareString, "member");
          this.save(room);
        }
      }
      const reason = invite.getChildText("reason");
      // §7.8.2 allows the inviter's real or occupant JID: the occupant JID unless the room
      // shows real JIDs to everyone, so an invitation from an anonymous room reveals no one.
      const invitedBy =
        room.config.whois === "anyone" ? from.toString() : this.occupantJid(room, inviter.nick).toString();
      const body = `${invitedBy} invited you to the room ${room.jid}${reason ? `: ${reason}` : ""}`;
      await this.send(
        x(
          "message",
          { id: id ?? randomBytes(6).toString("base64url") },
          x(
            "x",
            { xmlns: NS_MUC_USER },
            // An empty reason when none was given, as Prosody sends it.
            x("invite", { from: invitedBy }, x("reason", null, reason ?? "")),
            room.config.password !== "" ? x("password", null, room.config.password) : undefined,
          ),
          x("body", null, body),
          x("x", { xmlns: NS_CONFERENCE, jid: room.jid, ...(reason ? { reason } : {}) }),
        ),
        roomJid,
        invitee,
      );
    }
    for (const decline of user.getChildren("decline")) {
      const inviter = parse(decline.attrs.to, "a decline");
      const reason = decline.getChildText("reason");
      await this.send(
        x(
          "message",
          { id: id ?? randomBytes(6).toString("base64url") },
          x(
            "x",
            { xmlns: NS_MUC_USER },
            x(
              "decline",
              { from: from.bareString },
              reason !== undefined ? x("reason", null, reason) : undefined,
            ),
          ),
        ),
        roomJid,
        inviter,
      );
    }
  }

  /**
   * Voice requests (§7.13, §8.6): a visitor's request goes to the moderators as a form; a
   * moderator's answer with muc#request_allow grants the voice.
   */
  private async voiceRequest(room: Room, from: Jid, form: XmlElement): Promise<void> {
    const sender = room.occupantOf(from.toString());
    if (!sender) throw new StanzaError("not-acceptable", "only occupants may ask for voice");
    const values = formValues(form);
    const one = (v: string) => values.get(v)?.[0];
    const allow = one("muc#request_allow");
    if (allow !== undefined) {
      if (sender.role !== "moderator") throw new StanzaError("forbidden", "only moderators grant voice");
      if (allow !== "1" && allow !== "true") return;
      const nick = one("muc#roomnick");
      const target = nick === undefined ? undefined : room.occupants.get(nick);
      if (!target) throw new StanzaError("item-not-found", "no occupant with that nickname");
      if (target.role !== "visitor") return;
      target.role = "participant";
      await this.broadcastPresence(room, target, { actor: { nick: sender.nick, jid: from.toString() } });
      return;
    }
    if (one("muc#role") !== "participant")
      throw new StanzaError("bad-request", "a voice request asks for the participant role");
    // Only visitors lack a voice; anyone else's request changes nothing.
    if (sender.role !== "visitor") return;
    const field = (v: string, type: string, label: string, value: string) =>
      x("field", { var: v, type, label }, x("value", null, value));
    const request = x(
      "x",
      { xmlns: NS_DATA, type: "form" },
      x("title", null, "Voice request"),
      field("FORM_TYPE", "hidden", "", NS_MUC_REQUEST),
      field("muc#role", "list-single", "Requested role", "participant"),
      field("muc#jid", "jid-single", "User ID", [...sender.sessions.values()][0]!.jid.toString()),
      field("muc#roomnick", "text-single", "Room nickname", sender.nick),
      field("muc#request_allow", "boolean", "Grant voice to this person?", "false"),
    );
    const roomJid = this.roomJid(room);
    const sends: Promise<void>[] = [];
    for (const o of room.occupants.values())
      if (o.role === "moderator")
        for (const sess of o.sessions.values())
          sends.push(
            this.send(
              x("message", { id: randomBytes(6).toString("base64url") }, request.clone()),
              roomJid,
              sess.jid,
            ),
          );
    await Promise.all(sends);
  }

  // ---- IQs ----

  /** IQs to an occupant: self-ping (XEP-0410) is answered; others go to the occupant's client. */
  private async occupantIq(
    room: Room | undefined,
    from: Jid,
    nick: string,
    stanza: XmlElement,
  ): Promise<void> {
    const sender = room?.occupantOf(from.toString());
    // XEP-0410 §3: not-acceptable tells a client it is no longer joined.
    if (!room || !sender) throw new StanzaError("not-acceptable", "you are not an occupant of this room");
    const payload = stanza.firstElement();
    if (nick === sender.nick && payload?.name === "ping" && payload.attrs.xmlns === NS_PING) {
      await this.result(stanza, this.occupantJid(room, nick), from);
      return;
    }
    const target = room.occupants.get(nick);
    if (!target) throw new StanzaError("item-not-found", "no occupant with that nickname");
    const session = [...target.sessions.values()].at(-1)!;
    const id = `muc-${randomBytes(9).toString("base64url")}`;
    const timer = setTimeout(() => this.forwarded.delete(id), FORWARDED_IQ_TIMEOUT_MS);
    timer.unref();
    this.forwarded.set(id, {
      asker: from,
      askerId: stanza.attrs.id ?? "",
      target: session.jid.toString(),
      from: this.occupantJid(room, nick),
      timer,
    });
    const iq = stanza.clone();
    iq.attrs.id = id;
    await this.send(iq, this.occupantJid(room, sender.nick), session.jid);
  }

  /** The answer to an IQ the room forwarded goes back to whoever asked. */
  private async forwardedReply(stanza: XmlElement, from: Jid): Promise<void> {
    const id = stanza.attrs.id;
    const pending = id === undefined ? undefined : this.forwarded.get(id);
    if (!pending || pending.target !== from.toString()) return;
    this.forwarded.delete(id!);
    clearTimeout(pending.timer);
    const reply = stanza.clone();
    reply.attrs.id = pending.askerId;
    await this.send(reply, pending.from, pending.asker);
  }

  /** Answers an IQ to the room; null when the answer was sent already. */
  private async roomIq(
    room: Room,
    type: "get" | "set",
    payload: XmlElement,
    from: Jid,
    iq: XmlElement,
  ): Promise<XmlElement | undefined | null> {
    const ns = payload.attrs.xmlns;
    if (type === "get" && ns === NS_DISCO_INFO) return this.roomInfo(room, payload, from);
    if (ns === NS_REGISTER) return this.register(room, type, payload, from);
    if (type === "get" && ns === NS_DISCO_ITEMS) {
      const asker = room.occupantOf(from.toString());
      const visible = room.config.public && asker !== undefined;
      return x(
        "query",
        { xmlns: NS_DISCO_ITEMS, ...(payload.attrs.node ? { node: payload.attrs.node } : {}) },
        ...(visible ? [...room.occupants.keys()].map((n) => x("item", { jid: `${room.jid}/${n}` })) : []),
      );
    }
    if (type === "get" && ns === NS_PING) return undefined;
    if (ns === NS_MUC_OWNER) return this.ownerIq(room, type, payload, from, iq);
    if (ns === NS_MUC_ADMIN)
      return type === "get" ? this.adminGet(room, payload, from) : this.adminSet(room, payload, from);
    if (ns === NS_MAM) return this.mam(room, type, payload, from, iq);
    throw new StanzaError("service-unavailable");
  }

  private roomInfo(room: Room, payload: XmlElement, from: Jid): XmlElement {
    const node = payload.attrs.node;
    // §7.12: the nick the asker registered, if any.
    if (node === "x-roomuser-item") {
      const nick = room.nicks.get(from.bareString);
      return x(
        "query",
        { xmlns: NS_DISCO_INFO, node },
        nick !== undefined ? x("identity", { category: "conference", type: "text", name: nick }) : undefined,
      );
    }
    if (node !== undefined) throw new StanzaError("item-not-found", "no such node");
    return x(
      "query",
      { xmlns: NS_DISCO_INFO },
      x("identity", { category: "conference", type: "text", name: room.config.name || room.localpart }),
      ...roomFeatures(room.config).map((f) => x("feature", { var: f })),
      roomInfoForm(room),
    );
  }

  /**
   * Nick registration (§7.10): the form, registering (which makes the user a member) and
   * cancelling (§7.10.2, <remove/>, which ends the membership).
   */
  private async register(room: Room, type: "get" | "set", payload: XmlElement, from: Jid) {
    const bare = from.bareString;
    const affiliation = await this.affiliationFor(room, from);
    if (affiliation === "outcast") throw new StanzaError("forbidden", "you are banned from this room");
    const registered = room.nicks.get(bare);
    if (type === "get") {
      if (registered !== undefined)
        return x("query", { xmlns: NS_REGISTER }, x("registered"), x("username", null, registered));
      if (room.config.membersOnly && affiliationRank(affiliation) < 2)
        throw new StanzaError("registration-required", "only members register in a members-only room");
      return x(
        "query",
        { xmlns: NS_REGISTER },
        x("instructions", null, "Register a nickname in this room"),
        x(
          "x",
          { xmlns: NS_DATA, type: "form" },
          x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", null, NS_MUC_REGISTER)),
          x("field", { var: "muc#register_roomnick", type: "text-single", label: "Nickname" }, x("required")),
        ),
      );
    }
    if (payload.getChild("remove")) {
      // A member cancels the membership, reserved nick or not: registering is becoming a member.
      if (registered === undefined && room.affiliationOf(bare) !== "member")
        throw new StanzaError("item-not-found", "no registration in this room");
      room.nicks.delete(bare);
      if (room.affiliationOf(bare) === "member") {
        room.setAffiliation(bare, "none");
        const inRoom = room.occupantsOf(bare);
        // Out of the room, the change is told as an administrator's change would be.
        if (inRoom.length === 0) await this.announceAffiliation(room, bare, "none", undefined);
        for (const o of inRoom) {
          if (room.config.membersOnly && !o.serviceAdmin)
            await this.removeOccupant(room, o, { codes: [321] });
          else await this.broadcastPresence(room, o, {});
        }
      }
      this.save(room);
      return undefined;
    }
    const form = payload.getChild("x", NS_DATA);
    if (form?.attrs.type !== "submit") throw new StanzaError("bad-request", "expected a submitted form");
    const values = formValues(form);
    if (values.get("FORM_TYPE")?.[0] !== NS_MUC_REGISTER)
      throw new StanzaError("bad-request", `FORM_TYPE must be ${NS_MUC_REGISTER}`);
    const raw = values.get("muc#register_roomnick")?.[0]?.trim() ?? "";
    if (raw === "") throw new StanzaError("not-acceptable", "a nickname is needed");
    const nick = this.nicknameOf(room, raw);
    if (room.config.membersOnly && affiliationRank(affiliation) < 2)
      throw new StanzaError("registration-required", "only members register in a members-only room");
    const holder = room.nickHolder(nick);
    const present = room.occupants.get(nick);
    if ((holder !== undefined && holder !== bare) || (present && present.bare !== bare))
      throw new StanzaError("conflict", "that nickname is someone else's");
    room.nicks.set(bare, nick);
    const inRoom = room.occupantsOf(bare);
    if (room.affiliationOf(bare) === "none") {
      room.setAffiliation(bare, "member");
      if (inRoom.length === 0) await this.announceAffiliation(room, bare, "member", undefined);
    }
    // §7.10: the occupants see the registered member's presence (a new membership must be
    // shown; a member registering a nick gets the same update, as Prosody sends it), before
    // the result.
    for (const o of inRoom) await this.broadcastPresence(room, o, {});
    this.save(room);
    return undefined;
  }

  /** The affiliation a user acts with in a room (service admins: owner). */
  private async affiliationFor(room: Room, user: Jid): Promise<Affiliation> {
    if (await this.d.isServiceAdmin(user)) return "owner";
    return room.affiliationOf(user.bareString);
  }

  private async ownerIq(room: Room, type: "get" | "set", payload: XmlElement, from: Jid, iq: XmlElement) {
    if ((await this.affiliationFor(room, from)) !== "owner")
      throw new StanzaError("forbidden", "only owners configure the room");
    const s = this.d.settings;
    if (type === "get")
      return x(
        "query",
        { xmlns: NS_MUC_OWNER },
        configForm(room.config, { maxOccupants: s.maxOccupantsPerRoom, maxHistory: s.maxHistoryLength }),
      );
    const destroy = payload.getChild("destroy");
    if (destroy) {
      await this.destroy(room, destroy);
      return undefined;
    }
    const form = payload.getChild("x", NS_DATA);
    if (!form) throw new StanzaError("bad-request", "expected a data form or <destroy/>");
    if (form.attrs.type === "cancel") {
      // Cancelling the configuration of a new room destroys it (§10.1.3).
      if (room.locked) await this.destroy(room, x("destroy"));
      return undefined;
    }
    if (form.attrs.type !== "submit")
      throw new StanzaError("bad-request", "the form must be submitted or cancelled");
    const old = room.config;
    const next = applyConfigForm(form, old, {
      maxOccupants: s.maxOccupantsPerRoom,
      maxHistory: s.maxHistoryLength,
      maxNameLength: s.maxRoomNameLength,
    });
    room.config = next;
    const wasLocked = room.locked;
    room.locked = false;
    if (room.history.length > next.historyLength)
      room.history.splice(0, room.history.length - next.historyLength);
    if (next.persistent) this.save(room);
    else if (old.persistent) this.unsave(room);
    // The owner learns of its success first, then everyone of the change (§10.2, §10.2.1).
    await this.result(iq, this.roomJid(room), from);
    // Status codes of the configuration change (§10.2.1).
    const codes = [104];
    if (next.whois !== old.whois) codes.push(next.whois === "anyone" ? 172 : 173);
    if (next.archive !== old.archive) codes.push(next.archive ? 170 : 171);
    // The first configuration of a new room notifies its occupant (the owner) too when it changes
    // the defaults, e.g. makes the room non-anonymous (172): §10.2.1 asks for a notice of every
    // change that affects privacy. Submitting the defaults unchanged (an instant room) is no change.
    if (!wasLocked || !isDeepStrictEqual(old, next)) {
      const roomJid = this.roomJid(room);
      const sends: Promise<void>[] = [];
      for (const o of room.occupants.values())
        for (const sess of o.sessions.values())
          sends.push(
            this.send(
              x(
                "message",
                { type: "groupchat", id: randomBytes(6).toString("base64url") },
                x("x", { xmlns: NS_MUC_USER }, ...codes.map((c) => x("status", { code: String(c) }))),
              ),
              roomJid,
              sess.jid,
            ),
          );
      await Promise.all(sends);
    }
    // Becoming members-only removes those without membership (§9.5, status 322).
    if (next.membersOnly && !old.membersOnly) {
      for (const o of [...room.occupants.values()])
        if (affiliationRank(room.effectiveAffiliation(o)) < 2)
          await this.removeOccupant(room, o, { codes: [322] });
    }
    this.dropIfEmpty(room);
    return null;
  }

  /**
   * Destroys a room (§10.9): every occupant leaves with the <destroy/>; its records go. An
   * alternate venue must be a JID (jid-malformed otherwise, and the room stays): occupants'
   * clients are sent it to join.
   */
  private async destroy(room: Room, destroy: XmlElement): Promise<void> {
    let venue: string | undefined;
    if (destroy.attrs.jid !== undefined) {
      try {
        venue = parseJid(destroy.attrs.jid).toString();
      } catch (err) {
        if (err instanceof JidError)
          throw new StanzaError("jid-malformed", `alternate venue: ${err.message}`);
        throw err;
      }
    }
    const d = x("destroy", venue !== undefined ? { jid: venue } : {});
    const reason = destroy.getChildText("reason");
    if (reason !== undefined) d.append(x("reason", null, reason));
    const occupants = [...room.occupants.values()];
    room.occupants.clear();
    const sends: Promise<void>[] = [];
    for (const o of occupants) {
      for (const jid of o.sessions.keys()) this.forgetSession(room, jid);
      // Each occupant is told only of itself, so the presence is self-presence (110), with its
      // own real JID as in every self-presence.
      const first = [...o.sessions.values()][0];
      const p = x(
        "presence",
        { type: "unavailable" },
        x(
          "x",
          { xmlns: NS_MUC_USER },
          // In the order of every other presence of the room: <destroy/>, the item, then 110.
          d,
          x("item", { affiliation: "none", role: "none", ...(first ? { jid: first.jid.toString() } : {}) }),
          x("status", { code: "110" }),
        ),
      );
      for (const s of o.sessions.values())
        sends.push(this.send(p.clone(), this.occupantJid(room, o.nick), s.jid));
    }
    await Promise.all(sends);
    this.rooms.delete(room.localpart);
    this.stats.destroyed++;
    this.unsave(room);
    this.forgetArchive(room);
    this.d.ended?.(room.jid);
  }

  private adminItems(payload: XmlElement): XmlElement[] {
    const items = payload.getChildren("item");
    if (items.length === 0) throw new StanzaError("bad-request", "expected <item/> elements");
    return items;
  }

  private async adminGet(room: Room, payload: XmlElement, from: Jid): Promise<XmlElement> {
    const [item] = this.adminItems(payload);
    const affiliation = item!.attrs.affiliation;
    const role = item!.attrs.role;
    const out = x("query", { xmlns: NS_MUC_ADMIN });
    if (affiliation !== undefined) {
      if (!AFFILIATIONS.includes(affiliation as Affiliation) || affiliation === "none")
        throw new StanzaError("bad-request", `no list of affiliation ${affiliation}`);
      const rank = affiliationRank(await this.affiliationFor(room, from));
      const nonAnonymous = room.config.whois === "anyone";
      if (affiliation === "owner" || affiliation === "admin") {
        // §10.5, §10.8: the owner and admin lists are the owners' in a semi-anonymous room; a
        // non-anonymous room, whose members see real JIDs anyway, shows them to its members too.
        if (rank < 4 && !(nonAnonymous && rank >= 2))
          throw new StanzaError("forbidden", `only owners see the ${affiliation} list of this room`);
      } else {
        // §9.5: in a non-anonymous room members see the member list too, in the room or not.
        const memberMayRead = affiliation === "member" && nonAnonymous && rank >= 2;
        if (rank < 3 && !memberMayRead)
          throw new StanzaError("forbidden", "only admins and owners see this affiliation list");
      }
      for (const [jid, a] of room.affiliations)
        if (a === affiliation) {
          const nick = room.nicks.get(jid);
          const reason = room.reasons.get(jid);
          out.append(
            x(
              "item",
              { affiliation: a, jid, ...(nick !== undefined ? { nick } : {}) },
              ...(reason !== undefined ? [x("reason", null, reason)] : []),
            ),
          );
        }
      return out;
    }
    if (role !== undefined) {
      if (!ROLES.includes(role as Role) || role === "none")
        throw new StanzaError("bad-request", `no list of role ${role}`);
      const asker = room.occupantOf(from.toString());
      if (asker?.role !== "moderator") throw new StanzaError("forbidden", "only moderators see role lists");
      for (const o of room.occupants.values())
        if (o.role === role)
          out.append(
            x("item", {
              role: o.role,
              nick: o.nick,
              affiliation: room.effectiveAffiliation(o),
              jid: [...o.sessions.values()][0]!.jid.toString(),
            }),
          );
      return out;
    }
    throw new StanzaError("bad-request", "an item names an affiliation or a role");
  }

  private async adminSet(room: Room, payload: XmlElement, from: Jid): Promise<undefined> {
    const items = this.adminItems(payload);
    const actorAffiliation = await this.affiliationFor(room, from);
    const actor = room.occupantOf(from.toString());
    // Check every change before making any (§9.5: the list is changed as a whole).
    type Change =
      | { kind: "role"; target: Occupant; role: Role; reason: string | undefined }
      | {
          kind: "affiliation";
          bare: string;
          affiliation: Affiliation;
          reason: string | undefined;
          /** The reserved nick given with the JID: "" unsets it (§9.5). */
          nick: string | undefined;
        };
    const changes: Change[] = [];
    /** Nicks reserved by this request so far: nick → bare JID. */
    const reserved = new Map<string, string>();
    for (const item of items) {
      const reason = item.getChildText("reason");
      if (item.attrs.role !== undefined && item.attrs.affiliation === undefined) {
        const role = item.attrs.role as Role;
        if (!ROLES.includes(role)) throw new StanzaError("bad-request", `unknown role ${item.attrs.role}`);
        const nick = item.attrs.nick;
        if (nick === undefined) throw new StanzaError("bad-request", "a role change names a nick");
        const target = room.occupants.get(nick);
        if (!target) throw new StanzaError("item-not-found", "no occupant with that nickname");
        const actorRole: Role =
          actor?.role ?? (affiliationRank(actorAffiliation) >= 3 ? "moderator" : "none");
        checkRoleChange(
          { affiliation: actorAffiliation, role: actorRole },
          { affiliation: room.effectiveAffiliation(target), role: target.role },
          role,
        );
        changes.push({ kind: "role", target, role, reason });
      } else if (item.attrs.affiliation !== undefined) {
        const affiliation = item.attrs.affiliation as Affiliation;
        if (!AFFILIATIONS.includes(affiliation))
          throw new StanzaError("bad-request", `unknown affiliation ${item.attrs.affiliation}`);
        let bare: string;
        let nick: string | undefined;
        if (item.attrs.jid !== undefined) {
          try {
            bare = parseJid(item.attrs.jid).bareString;
          } catch (err) {
            if (err instanceof JidError) throw new StanzaError("jid-malformed", err.message);
            throw err;
          }
          if (item.attrs.nick !== undefined)
            nick = this.reservableNick(room, bare, affiliation, item.attrs.nick, reserved);
        } else if (item.attrs.nick !== undefined) {
          const target = room.occupants.get(item.attrs.nick);
          if (!target) throw new StanzaError("item-not-found", "no occupant with that nickname");
          bare = target.bare;
        } else throw new StanzaError("bad-request", "an affiliation change names a jid");
        checkAffiliationChange(actorAffiliation, room.affiliationOf(bare), affiliation);
        changes.push({ kind: "affiliation", bare, affiliation, reason, nick });
      } else throw new StanzaError("bad-request", "an item names a role or an affiliation");
    }
    // The room keeps an owner (§10.6: the last owner cannot give up ownership).
    const owners = new Set(room.owners());
    for (const c of changes)
      if (c.kind === "affiliation") {
        if (c.affiliation === "owner") owners.add(c.bare);
        else owners.delete(c.bare);
      }
    if (owners.size === 0) throw new StanzaError("conflict", "a room keeps at least one owner");

    const byActor = actor ? { actor: { nick: actor.nick, jid: from.toString() } } : {};
    for (const c of changes) {
      if (c.kind === "role") {
        if (!room.occupants.has(c.target.nick)) continue;
        if (c.role === "none") {
          await this.removeOccupant(room, c.target, {
            codes: [307],
            ...byActor,
            ...(c.reason !== undefined ? { reason: c.reason } : {}),
          });
        } else {
          const was = c.target.role;
          c.target.role = c.role;
          await this.broadcastPresence(room, c.target, {
            ...byActor,
            ...(c.reason !== undefined ? { reason: c.reason } : {}),
          });
          if (was !== "moderator" && c.role === "moderator") await this.revealTo(room, c.target);
        }
        continue;
      }
      room.setAffiliation(c.bare, c.affiliation, c.reason);
      if (c.nick === "") room.nicks.delete(c.bare);
      else if (c.nick !== undefined) {
        room.nicks.set(c.bare, c.nick);
        const squatter = room.occupants.get(c.nick);
        if (squatter && squatter.bare !== c.bare)
          await this.removeOccupant(room, squatter, { codes: [307], reason: "This nickname is reserved" });
      }
      const targets = room.occupantsOf(c.bare);
      if (targets.length === 0) {
        await this.announceAffiliation(room, c.bare, c.affiliation, c.reason);
        continue;
      }
      for (const o of targets) {
        const details = {
          ...byActor,
          ...(c.reason !== undefined ? { reason: c.reason } : {}),
        };
        if (c.affiliation === "outcast") await this.removeOccupant(room, o, { ...details, codes: [301] });
        else if (room.config.membersOnly && affiliationRank(room.effectiveAffiliation(o)) < 2)
          await this.removeOccupant(room, o, { ...details, codes: [321] });
        else {
          const was = o.role;
          o.role = room.defaultRole(room.effectiveAffiliation(o));
          await this.broadcastPresence(room, o, details);
          if (was !== "moderator" && o.role === "moderator") await this.revealTo(room, o);
        }
      }
    }
    this.save(room);
    return undefined;
  }

  /**
   * The affiliation change of a user who is not in the room, told to the occupants by a
   * message from the room (XEP-0045 §9 "Notifications of Changes": MAY), so that their
   * member lists stay current; in a semi-anonymous room only moderators see the JID.
   */
  private async announceAffiliation(
    room: Room,
    bare: string,
    affiliation: Affiliation,
    reason: string | undefined,
  ): Promise<void> {
    const item = x("item", { jid: bare, affiliation });
    if (reason !== undefined && reason !== "") item.append(x("reason", null, reason));
    // As the presence of an occupant removed by the change would say: banned, or no longer a member.
    const status =
      affiliation === "outcast"
        ? 301
        : room.config.membersOnly && affiliationRank(affiliation) < 2
          ? 321
          : undefined;
    const roomJid = this.roomJid(room);
    const sends: Promise<void>[] = [];
    for (const o of room.occupants.values()) {
      if (!room.seesRealJids(o)) continue;
      for (const sess of o.sessions.values())
        sends.push(
          this.send(
            x(
              "message",
              { id: randomBytes(6).toString("base64url") },
              x(
                "x",
                { xmlns: NS_MUC_USER },
                ...(status !== undefined ? [x("status", { code: String(status) })] : []),
                item.clone(),
              ),
            ),
            roomJid,
            sess.jid,
          ),
        );
    }
    await Promise.all(sends);
  }

  /**
   * The nick an admin reserves for `bare` with its affiliation (§9.5: 'nick' beside 'jid'
   * changes the reserved nick, "" unsets it), checked as a registration is (§7.10).
   */
  private reservableNick(
    room: Room,
    bare: string,
    affiliation: Affiliation,
    raw: string,
    taken: Map<string, string>,
  ): string | undefined {
    // Outcasts and those without an affiliation keep no reserved nick: theirs goes with it.
    if (affiliationRank(affiliation) < 2) return undefined;
    if (raw === "") return "";
    const nick = this.nicknameOf(room, raw);
    // Someone else's reservation is a conflict; someone else merely using the nick in the room
    // is not: the admin's reservation wins and that occupant is removed (as Prosody does),
    // unless it is an admin or owner, whom no admin may kick (§8.2).
    const holder = taken.get(nick) ?? room.nickHolder(nick);
    const present = room.occupants.get(nick);
    if (
      (holder !== undefined && holder !== bare) ||
      (present && present.bare !== bare && affiliationRank(room.effectiveAffiliation(present)) >= 3)
    )
      throw new StanzaError("conflict", "that nickname is someone else's");
    taken.set(nick, bare);
    return nick;
  }

  // ---- the room archive (XEP-0313 on the room JID) ----

  private async mam(
    room: Room,
    type: "get" | "set",
    payload: XmlElement,
    from: Jid,
    iq: XmlElement,
  ): Promise<XmlElement | null> {
    if (!room.config.archive) throw new StanzaError("feature-not-implemented", "this room keeps no archive");
    const affiliation = await this.affiliationFor(room, from);
    const occupant = room.occupantOf(from.toString());
    // An open room's archive is open to all but outcasts; a members-only room's to its members (§6.1).
    if (
      affiliation === "outcast" ||
      ((room.config.membersOnly || !room.config.public) && affiliationRank(affiliation) < 2 && !occupant)
    )
      throw new StanzaError("forbidden", "the archive of this room is not open to you");
    if (type === "get") {
      if (payload.name === "query") return x("query", { xmlns: NS_MAM }, queryForm());
      if (payload.name === "metadata") {
        const [first] = (await this.d.archive.query({ owner: room.jid, limit: 1 })).messages;
        const [last] = (await this.d.archive.query({ owner: room.jid, limit: 1, newestFirst: true }))
          .messages;
        const el = x("metadata", { xmlns: NS_MAM });
        if (first && last)
          el.append(
            x("start", { id: first.id, timestamp: stamp(first.at) }),
            x("end", { id: last.id, timestamp: stamp(last.at) }),
          );
        return el;
      }
      throw new StanzaError("feature-not-implemented", `<${payload.name}/> is not served`);
    }
    if (payload.name !== "query")
      throw new StanzaError("feature-not-implemented", `<${payload.name}/> is not served`);
    const q = parseQuery(payload);
    const owner = room.jid;
    const filters: MessageQuery = {
      owner,
      ...(q.peer !== undefined ? { peer: q.peer } : {}),
      ...(q.peerResource !== undefined ? { peerResource: q.peerResource } : {}),
      ...(q.start !== undefined ? { start: q.start } : {}),
      ...(q.end !== undefined ? { end: q.end } : {}),
      ...(q.ids !== undefined ? { ids: q.ids } : {}),
      ...(q.text !== undefined ? { text: q.text } : {}),
    };
    const backwards = q.before !== undefined;
    const page: MessageQuery = {
      ...filters,
      limit: Math.min(q.max ?? this.d.pageSizes.default, this.d.pageSizes.max),
      ...(backwards ? { newestFirst: true } : {}),
    };
    // A cursor (RSM) narrows the range the form gave; without one the form's bounds apply.
    const afterId = q.after ?? q.afterId;
    const beforeId = q.before || q.beforeId;
    if (afterId !== undefined) page.afterId = afterId;
    if (beforeId !== undefined) page.beforeId = beforeId;
    let messages: ArchivedMessage[];
    let complete: boolean;
    try {
      if (page.limit === 0) {
        await this.d.archive.query({ ...page, limit: 1 });
        messages = [];
        complete = false;
      } else {
        const r = await this.d.archive.query(page);
        messages = backwards ? r.messages.reverse() : r.messages;
        complete = r.complete;
      }
    } catch (err) {
      if (err instanceof ArchiveIdNotFound)
        throw new StanzaError("item-not-found", `${err.id} is not in the archive`);
      throw err;
    }
    const count =
      q.afterId === undefined && q.beforeId === undefined ? await this.d.archive.count(filters) : undefined;
    if (count === 0) complete = true;
    const roomJid = this.roomJid(room);
    for (const m of q.flip ? [...messages].reverse() : messages) {
      const original = parseElement(m.stanza);
      if (original) original.attrs.xmlns = NS_CLIENT;
      await this.send(
        x(
          "message",
          { id: randomBytes(6).toString("base64url") },
          x(
            "result",
            { xmlns: NS_MAM, id: m.id, ...(q.queryId !== undefined ? { queryid: q.queryId } : {}) },
            x(
              "forwarded",
              { xmlns: NS_FORWARD },
              x("delay", { xmlns: NS_DELAY, stamp: stamp(m.at) }),
              original,
            ),
          ),
        ),
        roomJid,
        from,
      );
    }
    const set = x("set", { xmlns: NS_RSM });
    if (messages.length > 0)
      set.append(x("first", null, messages[0]!.id), x("last", null, messages.at(-1)!.id));
    if (count !== undefined) set.append(x("count", null, String(count)));
    await this.result(
      iq,
      roomJid,
      from,
      x("fin", { xmlns: NS_MAM, ...(complete ? { complete: "true" } : {}) }, set),
    );
    return null;
  }

  // ---- storage ----

  private save(room: Room): void {
    if (!room.config.persistent || room.locked) return;
    const data = room.stored();
    room.saving = room.saving
      .then(() => this.d.rooms.put(room.jid, data))
      .catch((err: unknown) => this.d.log.error({ err, room: room.jid }, "storing a room failed"));
  }

  private unsave(room: Room): void {
    room.saving = room.saving
      .then(async () => {
        await this.d.rooms.delete(room.jid);
      })
      .catch((err: unknown) => this.d.log.error({ err, room: room.jid }, "removing a stored room failed"));
  }

  /** A room that is gone takes its archive with it (a new room of that name starts afresh). */
  private forgetArchive(room: Room): void {
    void this.removeArchive(room);
  }

  private async removeArchive(room: Room): Promise<void> {
    try {
      await this.d.archive.remove(room.jid);
    } catch (err) {
      this.d.log.error({ err, room: room.jid }, "removing a room archive failed");
    }
  }
}

/** Whether the join's nick, as its sender wrote it, is not the occupant's nick it became. */
function nickChanged(stanza: XmlElement, to: Jid): boolean {
  const written = writtenTo(stanza);
  const nick = written === undefined ? undefined : resourceAsWritten(written);
  return nick !== undefined && nick !== to.resource;
}
