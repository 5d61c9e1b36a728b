/**
 * A room's state and the rules of XEP-0045 that depend on it alone: configuration,
 * affiliations, occupants, roles, the history, and who may do what (§5.1, §5.2).
 */
import { StanzaError } from "../../core/errors.js";
import type { Jid } from "../../core/jid.js";
import type { XmlElement } from "../../core/xml/element.js";
import type { RoomDefaults } from "./config.js";

export type Affiliation = "owner" | "admin" | "member" | "none" | "outcast";
export type Role = "moderator" | "participant" | "visitor" | "none";

export const AFFILIATIONS: readonly Affiliation[] = ["owner", "admin", "member", "none", "outcast"];
export const ROLES: readonly Role[] = ["moderator", "participant", "visitor", "none"];

const AFFILIATION_RANK: Record<Affiliation, number> = { owner: 4, admin: 3, member: 2, none: 1, outcast: 0 };

export function affiliationRank(a: Affiliation): number {
  return AFFILIATION_RANK[a];
}

export interface RoomConfig {
  name: string;
  description: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** "" when the room has no password. */
  password: string;
  whois: "moderators" | "anyone";
  changeSubject: boolean;
  allowInvites: boolean;
  allowPm: "anyone" | "participants" | "moderators" | "none";
  maxOccupants: number;
  historyLength: number;
  archive: boolean;
}

export function defaultConfig(
  defaults: RoomDefaults,
  maxOccupants: number,
  historyLength: number,
): RoomConfig {
  return {
    name: "",
    description: "",
    password: "",
    maxOccupants,
    historyLength,
    ...defaults,
  };
}

export interface Subject {
  text: string;
  /** The nick that set it ("" when the room did). */
  by: string;
  at: number;
}

/** What is stored of a persistent room (documents("muc-rooms"), by room JID). */
export interface StoredRoom {
  config: RoomConfig;
  /** Bare JID → affiliation other than none. */
  affiliations: Record<string, Affiliation>;
  subject?: Subject;
  /** Registered nicks (§7.10): bare JID → nick. */
  nicks?: Record<string, string>;
  /** The reason given with an affiliation (a ban's, §9.1): bare JID → reason. */
  reasons?: Record<string, string>;
  createdAt: number;
}

/** One joined resource of an occupant. */
export interface OccupantSession {
  jid: Jid;
  /** Its last presence as sent to the room, without MUC extensions and addresses. */
  presence: XmlElement;
}

/** One occupant: a nick held by one user (bare JID), from one or more of its resources. */
export interface Occupant {
  nick: string;
  bare: string;
  role: Role;
  /** Owner rights from the service (server or service admin), whatever the room's affiliations say. */
  serviceAdmin: boolean;
  /** By full JID. */
  sessions: Map<string, OccupantSession>;
}

export interface HistoryEntry {
  /** The message as broadcast, without 'to'. */
  stanza: XmlElement;
  at: number;
  /** Serialized length, for maxchars. */
  chars: number;
}

export class Room {
  readonly occupants = new Map<string, Occupant>();
  /** Full JID of a joined session → nick. */
  readonly byRealJid = new Map<string, string>();
  readonly affiliations = new Map<string, Affiliation>();
  /** Registered nicks (§7.10): bare JID → nick. */
  readonly nicks = new Map<string, string>();
  /** The reason given with each affiliation, listed with it (§9.2): bare JID → reason. */
  readonly reasons = new Map<string, string>();
  history: HistoryEntry[] = [];
  /** The archived history read back after a restart (once, on first need). */
  historyReady: Promise<void> | undefined;
  subject: Subject | undefined;
  /** A new room its owner has not configured yet (§10.1): nobody else may enter. */
  locked = false;
  /** Room writes in order: each waits for the one before. */
  saving: Promise<void> = Promise.resolve();

  constructor(
    /** The room's bare JID. */
    readonly jid: string,
    public config: RoomConfig,
    readonly createdAt: number,
  ) {}

  get localpart(): string {
    return this.jid.slice(0, this.jid.indexOf("@"));
  }

  affiliationOf(bare: string): Affiliation {
    return this.affiliations.get(bare) ?? "none";
  }

  /** The affiliation an occupant acts with: owner for service admins. */
  effectiveAffiliation(o: Occupant): Affiliation {
    return o.serviceAdmin ? "owner" : this.affiliationOf(o.bare);
  }

  setAffiliation(bare: string, a: Affiliation, reason?: string): void {
    if (a === "none") this.affiliations.delete(bare);
    else this.affiliations.set(bare, a);
    // The reason goes with the affiliation it was given for.
    if (a !== "none" && reason) this.reasons.set(bare, reason);
    else this.reasons.delete(bare);
    // A registered nick belongs to a member of the room (§7.10).
    if (a === "none" || a === "outcast") this.nicks.delete(bare);
  }

  /** Who registered this nick, if anyone. */
  nickHolder(nick: string): string | undefined {
    for (const [bare, n] of this.nicks) if (n === nick) return bare;
    return undefined;
  }

  owners(): string[] {
    return [...this.affiliations].filter(([, a]) => a === "owner").map(([j]) => j);
  }

  /** The role an occupant gets when entering with this affiliation (§5.1). */
  defaultRole(a: Affiliation): Role {
    if (a === "owner" || a === "admin") return "moderator";
    if (a === "member") return "participant";
    return this.config.moderated ? "visitor" : "participant";
  }

  /** The occupants (nicks) a user (bare JID) holds in the room. */
  occupantsOf(bare: string): Occupant[] {
    return [...this.occupants.values()].filter((o) => o.bare === bare);
  }

  occupantOf(realJid: string): Occupant | undefined {
    const nick = this.byRealJid.get(realJid);
    return nick === undefined ? undefined : this.occupants.get(nick);
  }

  /** May this occupant see real JIDs? */
  seesRealJids(viewer: Occupant | undefined): boolean {
    return this.config.whois === "anyone" || viewer?.role === "moderator";
  }

  stored(): StoredRoom {
    return {
      config: { ...this.config },
      affiliations: Object.fromEntries(this.affiliations),
      ...(this.subject ? { subject: this.subject } : {}),
      ...(this.nicks.size > 0 ? { nicks: Object.fromEntries(this.nicks) } : {}),
      ...(this.reasons.size > 0 ? { reasons: Object.fromEntries(this.reasons) } : {}),
      createdAt: this.createdAt,
    };
  }

  static fromStored(jid: string, s: StoredRoom, defaults: RoomConfig): Room {
    const room = new Room(jid, { ...defaults, ...s.config }, s.createdAt);
    for (const [bare, a] of Object.entries(s.affiliations))
      if (AFFILIATIONS.includes(a)) room.setAffiliation(bare, a, s.reasons?.[bare]);
    if (s.subject) room.subject = s.subject;
    for (const [bare, nick] of Object.entries(s.nicks ?? {})) room.nicks.set(bare, nick);
    return room;
  }

  addHistory(entry: HistoryEntry): void {
    this.history.push(entry);
    const excess = this.history.length - this.config.historyLength;
    if (excess > 0) this.history.splice(0, excess);
  }

  /**
   * The history a joining occupant asked for (§7.2.15): the last `maxstanzas`, those that fit
   * in `maxchars`, those of the last `seconds` or since `since`; every given limit applies.
   */
  historyFor(
    limits: { maxstanzas?: number; maxchars?: number; seconds?: number; since?: number },
    now: number,
  ) {
    let entries = this.history;
    if (limits.seconds !== undefined) entries = entries.filter((e) => e.at >= now - limits.seconds! * 1000);
    if (limits.since !== undefined) entries = entries.filter((e) => e.at >= limits.since!);
    if (limits.maxstanzas !== undefined)
      entries = limits.maxstanzas === 0 ? [] : entries.slice(-limits.maxstanzas);
    if (limits.maxchars !== undefined) {
      let budget = limits.maxchars;
      let from = entries.length;
      while (from > 0 && entries[from - 1]!.chars <= budget) {
        budget -= entries[from - 1]!.chars;
        from--;
      }
      entries = entries.slice(from);
    }
    return entries;
  }
}

/**
 * May `actor` (affiliation and role) change the role of `target` to `role` (§8, §9)?
 * Throws the standard error when not.
 */
export function checkRoleChange(
  actor: { affiliation: Affiliation; role: Role },
  target: { affiliation: Affiliation; role: Role },
  role: Role,
): void {
  if (actor.role !== "moderator") throw new StanzaError("forbidden", "only moderators change roles");
  // Granting or revoking moderator status takes an admin (§9.6, §9.7).
  if ((role === "moderator" || target.role === "moderator") && affiliationRank(actor.affiliation) < 3)
    throw new StanzaError("not-allowed", "only admins and owners grant or revoke moderator status");
  // Nobody changes the role of an occupant of a higher affiliation, nor an admin's or owner's role
  // unless the actor is an owner (§8.2, §9.7).
  if (affiliationRank(target.affiliation) > affiliationRank(actor.affiliation))
    throw new StanzaError("not-allowed", "that occupant's affiliation is higher than yours");
  if (role !== "moderator" && affiliationRank(target.affiliation) >= 3 && actor.affiliation !== "owner")
    throw new StanzaError("not-allowed", "admins and owners cannot be kicked or silenced by an admin");
  if (role !== "moderator" && target.affiliation === "owner")
    throw new StanzaError("not-allowed", "owners cannot be kicked or silenced");
}

/** May `actor` change `target`'s affiliation from `current` to `next` (§9, §10)? Throws when not. */
export function checkAffiliationChange(actor: Affiliation, current: Affiliation, next: Affiliation): void {
  if (actor === "owner") return;
  if (actor !== "admin") throw new StanzaError("forbidden", "only admins and owners change affiliations");
  // Admins manage members and outcasts only (§9).
  if (affiliationRank(current) >= 3 || affiliationRank(next) >= 3)
    throw new StanzaError("not-allowed", "only owners grant or revoke admin and owner affiliations");
}
