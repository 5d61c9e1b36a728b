/**
 * The group chat service's section of the configuration (`muc:`): where it is served, who
 * may create rooms, the limits, and the configuration a new room starts with.
 */
import { z } from "zod";
import type { ConfigSection } from "../../core/config.js";

export const RoomDefaultsSchema = z
  .object({
    /** Rooms outlive their last occupant (and a restart). */
    persistent: z.boolean().default(false),
    /** Rooms are listed in the service's disco#items. */
    public: z.boolean().default(true),
    membersOnly: z.boolean().default(false),
    /** Occupants without an affiliation join as visitors (no voice). */
    moderated: z.boolean().default(false),
    /** Who sees occupants' real JIDs: moderators (semi-anonymous) or anyone (non-anonymous). */
    whois: z.enum(["moderators", "anyone"]).default("moderators"),
    /** Participants may change the subject (moderators always may). */
    changeSubject: z.boolean().default(false),
    /** Members may invite others into a members-only room (admins and owners always may). */
    allowInvites: z.boolean().default(false),
    /** Who may send private messages to occupants. */
    allowPm: z.enum(["anyone", "participants", "moderators", "none"]).default("anyone"),
    /** Messages kept in the room archive (XEP-0313 on the room JID). */
    archive: z.boolean().default(true),
  })
  .prefault({});

export const MucSchema = z
  .object({
    /** Serve the group chat service at all. */
    enabled: z.boolean().default(true),
    /** The service's domain; default conference.<domain>. */
    domain: z.string().default(""),
    /** The service's name in service discovery. */
    name: z.string().min(1).default("Chatrooms"),
    /** Who may create rooms: anyone (remote users too), local accounts, or server admins only. */
    roomCreation: z.enum(["anyone", "local", "admins"]).default("local"),
    /** Bare JIDs with owner rights in every room (beside accounts holding the server's admin role). */
    admins: z.array(z.string()).default([]),
    /** A new room stays locked (only its owner can enter) until the owner configures it (XEP-0045 §10.1). */
    lockNewRooms: z.boolean().default(true),
    /** Rooms one user may own; 0: no limit (admins have none). */
    maxRoomsPerUser: z.number().int().min(0).default(100),
    /** Occupants per room, the highest value a room's owner may set (owners and admins may still enter). */
    maxOccupantsPerRoom: z.number().int().min(1).default(200),
    /** Messages a new room keeps for joining occupants. */
    defaultHistoryLength: z.number().int().min(0).default(20),
    /** The longest history a room's owner may set. */
    maxHistoryLength: z.number().int().min(0).default(100),
    /** The longest room name and description accepted in a room configuration. */
    maxRoomNameLength: z.number().int().min(1).default(200),
    /** The configuration rooms start with. */
    roomDefaults: RoomDefaultsSchema,
  })
  .prefault({});

export type MucConfig = z.infer<typeof MucSchema>;
export type RoomDefaults = z.infer<typeof RoomDefaultsSchema>;

export const mucConfigSection: ConfigSection = {
  keys: { muc: MucSchema },
};

declare module "../../core/config.js" {
  interface ConfigSections {
    muc: MucConfig;
  }
}
