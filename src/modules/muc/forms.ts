/**
 * The room configuration form (muc#roomconfig, XEP-0045 §10.2 and §15.5.3), the room
 * information form in disco#info (muc#roominfo, §15.5.4), and the features a room
 * advertises from its configuration (§15.3).
 */
import { StanzaError } from "../../core/errors.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MAM, NS_MUC, NS_SID } from "../../core/xml/namespaces.js";
import type { Room, RoomConfig } from "./room.js";

export const NS_ROOMCONFIG = "http://jabber.org/protocol/muc#roomconfig";
export const NS_ROOMINFO = "http://jabber.org/protocol/muc#roominfo";
export const NS_MUC_STABLE_ID = "http://jabber.org/protocol/muc#stable_id";
export const NS_SELF_PING_OPTIMIZATION = "http://jabber.org/protocol/muc#self-ping-optimization";

const F = "muc#roomconfig_";

function field(v: string, type: string, label: string, values: string[], options?: string[]): XmlElement {
  return x(
    "field",
    { var: v, type, label },
    ...(options ?? []).map((o) => x("option", { label: o }, x("value", null, o))),
    ...values.map((val) => x("value", null, val)),
  );
}

const bool = (b: boolean) => (b ? "1" : "0");

export function configForm(c: RoomConfig, limits: { maxOccupants: number; maxHistory: number }): XmlElement {
  return x(
    "x",
    { xmlns: NS_DATA, type: "form" },
    x("title", null, "Room configuration"),
    field("FORM_TYPE", "hidden", "", [NS_ROOMCONFIG]),
    field(`${F}roomname`, "text-single", "Name", [c.name]),
    field(`${F}roomdesc`, "text-single", "Description", [c.description]),
    field(`${F}persistentroom`, "boolean", "Persistent (kept when the last occupant leaves)", [
      bool(c.persistent),
    ]),
    field(`${F}publicroom`, "boolean", "Listed in the room directory", [bool(c.public)]),
    field(`${F}membersonly`, "boolean", "Members only", [bool(c.membersOnly)]),
    field(`${F}moderatedroom`, "boolean", "Moderated (visitors have no voice)", [bool(c.moderated)]),
    field(`${F}passwordprotectedroom`, "boolean", "Password protected", [bool(c.password !== "")]),
    field(`${F}roomsecret`, "text-private", "Password", [c.password]),
    field(`${F}whois`, "list-single", "Who may see real JIDs", [c.whois], ["moderators", "anyone"]),
    field(`${F}changesubject`, "boolean", "Participants may change the subject", [bool(c.changeSubject)]),
    field(`${F}allowinvites`, "boolean", "Members may invite", [bool(c.allowInvites)]),
    field(
      `${F}allowpm`,
      "list-single",
      "Who may send private messages",
      [c.allowPm],
      ["anyone", "participants", "moderators", "none"],
    ),
    field(`${F}maxusers`, "text-single", `Most occupants (up to ${limits.maxOccupants})`, [
      String(c.maxOccupants),
    ]),
    field("muc#maxhistoryfetch", "text-single", `Messages of history (up to ${limits.maxHistory})`, [
      String(c.historyLength),
    ]),
    field(`${F}enablearchiving`, "boolean", "Archive messages (XEP-0313)", [bool(c.archive)]),
  );
}

function parseBool(v: string, name: string): boolean {
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  throw new StanzaError("not-acceptable", `${name}: not a boolean (0, 1, false or true)`);
}

function parseCount(v: string, name: string, max: number): number {
  if (!/^\d+$/.test(v.trim())) throw new StanzaError("not-acceptable", `${name}: not a number`);
  const n = Number(v.trim());
  if (n > max) throw new StanzaError("not-acceptable", `${name}: at most ${max}`);
  return n;
}

/**
 * The configuration a submitted form asks for, over the current one. Fields not given keep
 * their values; unknown fields are ignored (clients send fields of other services); a value
 * that cannot be processed, malformed or out of range, is not-acceptable (XEP-0045 §10.1.3).
 */
export function applyConfigForm(
  form: XmlElement,
  current: RoomConfig,
  limits: { maxOccupants: number; maxHistory: number; maxNameLength: number },
): RoomConfig {
  const next = { ...current };
  let passwordProtected: boolean | undefined;
  for (const f of form.getChildren("field")) {
    const name = f.attrs.var;
    if (name === undefined) continue;
    const values = f.getChildren("value").map((v) => v.text());
    const v = values[0] ?? "";
    const text = (max: number) => {
      if (v.length > max) throw new StanzaError("not-acceptable", `${name}: at most ${max} characters`);
      return v;
    };
    switch (name) {
      case "FORM_TYPE":
        if (v !== NS_ROOMCONFIG) throw new StanzaError("bad-request", `FORM_TYPE must be ${NS_ROOMCONFIG}`);
        break;
      case `${F}roomname`:
        next.name = text(limits.maxNameLength);
        break;
      case `${F}roomdesc`:
        next.description = text(limits.maxNameLength * 5);
        break;
      case `${F}persistentroom`:
        next.persistent = parseBool(v, name);
        break;
      case `${F}publicroom`:
        next.public = parseBool(v, name);
        break;
      case `${F}membersonly`:
        next.membersOnly = parseBool(v, name);
        break;
      case `${F}moderatedroom`:
        next.moderated = parseBool(v, name);
        break;
      case `${F}passwordprotectedroom`:
        passwordProtected = parseBool(v, name);
        break;
      case `${F}roomsecret`:
        next.password = text(256);
        break;
      case `${F}whois`:
        if (v !== "moderators" && v !== "anyone") throw new StanzaError("not-acceptable", `${name}: ${v}`);
        next.whois = v;
        break;
      case `${F}changesubject`:
        next.changeSubject = parseBool(v, name);
        break;
      case `${F}allowinvites`:
        next.allowInvites = parseBool(v, name);
        break;
      case `${F}allowpm`:
        if (v !== "anyone" && v !== "participants" && v !== "moderators" && v !== "none")
          throw new StanzaError("not-acceptable", `${name}: ${v}`);
        next.allowPm = v;
        break;
      case `${F}maxusers`:
        next.maxOccupants =
          v === "" || v === "none" ? limits.maxOccupants : parseCount(v, name, limits.maxOccupants);
        if (next.maxOccupants === 0) throw new StanzaError("not-acceptable", `${name}: at least 1`);
        break;
      case "muc#maxhistoryfetch":
      case "muc#roomconfig_historylength":
        next.historyLength = parseCount(v, name, limits.maxHistory);
        break;
      case `${F}enablearchiving`:
        next.archive = parseBool(v, name);
        break;
      default:
        break;
    }
  }
  if (passwordProtected === false) next.password = "";
  if (passwordProtected === true && next.password === "")
    throw new StanzaError("not-acceptable", "a password-protected room needs a password");
  return next;
}

/** The features a room advertises (§15.3), from its configuration. */
export function roomFeatures(c: RoomConfig): string[] {
  return [
    NS_MUC,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_MUC_STABLE_ID,
    NS_SID,
    NS_SELF_PING_OPTIMIZATION,
    "jabber:x:conference",
    "jabber:iq:register",
    c.persistent ? "muc_persistent" : "muc_temporary",
    c.membersOnly ? "muc_membersonly" : "muc_open",
    c.public ? "muc_public" : "muc_hidden",
    c.whois === "anyone" ? "muc_nonanonymous" : "muc_semianonymous",
    c.password !== "" ? "muc_passwordprotected" : "muc_unsecured",
    c.moderated ? "muc_moderated" : "muc_unmoderated",
    ...(c.archive ? [NS_MAM] : []),
  ];
}

/** The muc#roominfo form of disco#info (§15.5.4). */
export function roomInfoForm(room: Room): XmlElement {
  const c = room.config;
  return x(
    "x",
    { xmlns: NS_DATA, type: "result" },
    field("FORM_TYPE", "hidden", "", [NS_ROOMINFO]),
    field("muc#roominfo_description", "text-single", "Description", [c.description]),
    field("muc#roominfo_occupants", "text-single", "Occupants", [String(room.occupants.size)]),
    field("muc#roominfo_subject", "text-single", "Subject", [room.subject?.text ?? ""]),
    field("muc#roominfo_subjectmod", "boolean", "Occupants may change the subject", [bool(c.changeSubject)]),
    field(`${F}roomname`, "text-single", "Name", [c.name]),
    field("muc#maxhistoryfetch", "text-single", "Messages of history", [String(c.historyLength)]),
    field(`${F}allowinvites`, "boolean", "Members may invite", [bool(c.allowInvites)]),
  );
}
