/**
 * Multi-user chat (XEP-0045) as a service on its own domain (`muc.domain`, default
 * conference.<domain>), registered as a route: rooms are created on first join (locked
 * until their owner configures them, or at once with an instant configuration), keep a
 * history for joining occupants, give groupchat messages a XEP-0359 stanza-id by the room,
 * and archive them for XEP-0313 queries on the room JID (`Storage.messages("muc")`, owned
 * by room JID). Persistent rooms (configuration, affiliations, subject) are documents in
 * `Storage.documents("muc-rooms")` and come back after a restart with their history read
 * from the archive. An occupant whose session ends leaves its rooms (the presence module
 * sends unavailable presence to the rooms it joined; `session/ended` makes sure).
 * XEP-0249 direct invitations are messages between users: the server routes them as they are.
 * In a cluster each room is served by one node at a time, and taken over when that node
 * leaves (cluster.ts).
 */

import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { DEFAULT_MAX_APPEND_WAIT_SECONDS } from "../../core/storage/append-room.js";
import type { DiscoApi } from "../disco/index.js";
import { ClusterRooms } from "./cluster.js";
import { mucConfigSection } from "./config.js";
import type { StoredRoom } from "./room.js";
import { MucService } from "./service.js";

/** Where the server keeps its admin role (`switchboard admin grant`), by account name. */
const ADMIN_ROLES_STORE = "admin-roles";

export interface MucApi {
  /** The service's domain. */
  readonly domain: string;
  /** Rooms and occupants now. */
  counts(): { rooms: number; occupants: number };
  /** Removes room messages older than `archive.retentionDays` now (the scheduled cleanup's work); returns how many. */
  pruneExpired(): Promise<number>;
}

export default defineModule({
  name: "muc",
  description: "Multi-user chat rooms on a service domain (XEP-0045, XEP-0313 on rooms, XEP-0410)",
  xeps: [
    {
      xep: "0045",
      version: "1.34.5",
      status: "partial",
      notes: "status 210 when preparing the nick changed it (what stringprep maps to nothing)",
    },
    { xep: "0249", version: "1.2", status: "complete", notes: "invitations are routed as they are" },
    { xep: "0410", version: "1.1.0", status: "complete" },
  ],
  config: mucConfigSection,
  async setup(ctx) {
    const settings = ctx.config.muc;
    if (!settings.enabled) return;
    const domain = settings.domain !== "" ? settings.domain.toLowerCase() : `conference.${ctx.domain}`;
    const adminRoles = ctx.storage.documents(ADMIN_ROLES_STORE);
    const admins = new Set(settings.admins.map((j) => j.toLowerCase()));
    const isServiceAdmin = async (user: Jid): Promise<boolean> => {
      if (admins.has(user.bareString)) return true;
      if (!ctx.router.isLocalDomain(user.domain) || user.local === "") return false;
      return (await adminRoles.get(ctx.accountKey(user))) !== undefined;
    };
    const archive = ctx.storage.messages("muc", { ownedByAccounts: false });
    let cluster: ClusterRooms | undefined;
    const service = new MucService({
      domain,
      settings,
      router: ctx.router,
      clock: ctx.clock,
      log: ctx.log,
      rooms: ctx.storage.documents<StoredRoom>("muc-rooms"),
      archive,
      archiveMaxWaitMs: (ctx.config.archive?.maxAppendWaitSeconds ?? DEFAULT_MAX_APPEND_WAIT_SECONDS) * 1000,
      isServiceAdmin,
      // Room archives page like account archives (the `archive` section), when it is there.
      pageSizes: {
        default: ctx.config.archive?.defaultPageSize ?? 50,
        max: ctx.config.archive?.maxPageSize ?? 250,
      },
      ended: (room) => cluster?.ended(room),
    });
    await service.load();
    if (ctx.nodes) {
      const rooms = new ClusterRooms({
        domain,
        nodes: ctx.nodes,
        router: ctx.router,
        sessions: ctx.sessions,
        service,
        onError: (err, what) => ctx.log.error({ err }, `group chat in the cluster: ${what} failed`),
      });
      cluster = rooms;
      ctx.addRoute(domain, rooms.route);
      ctx.filter("outbound", (session, stanza) => {
        rooms.outbound(session, stanza);
        return stanza;
      });
      ctx.onUnload(() => rooms.stop());
    } else {
      ctx.addRoute(domain, {
        kind: "service",
        deliver: (stanza, from, to) => service.deliver(stanza, from, to),
      });
    }
    ctx.onUnload(() => service.flush());

    // Room messages expire like account messages (`archive.retentionDays`).
    const retentionDays = ctx.config.archive?.retentionDays ?? 0;
    const pruneExpired = async (): Promise<number> => {
      if (retentionDays <= 0) return 0;
      const n = await archive.prune(ctx.clock.now() - retentionDays * 86_400_000);
      if (n > 0) ctx.log.info({ removed: n, retentionDays }, "expired room messages removed");
      return n;
    };
    if (retentionDays > 0) {
      const prune = () => {
        pruneExpired().catch((err: unknown) =>
          ctx.log.error({ err }, "removing expired room messages failed"),
        );
      };
      ctx.setTimeout(prune, 5_000);
      ctx.setInterval(prune, (ctx.config.archive?.cleanupIntervalMinutes ?? 60) * 60_000);
    }

    const disco = ctx.api<DiscoApi>("disco");
    if (disco) {
      const remove = disco.addItems("host", () => [{ jid: domain, name: settings.name }]);
      ctx.onUnload(remove);
    }

    // Occupants, remote ones too, learn that they left before the connections close (332).
    ctx.hook("server/stopping", async () => {
      await service.shutdown();
    });

    ctx.hook("session/ended", async ({ session }) => {
      if (!session.jid) return;
      cluster?.sessionEnded(session.jid);
      await service.sessionEnded(session.jid);
    });

    ctx.provide<MucApi>({
      domain,
      counts: () => ({ rooms: service.rooms.size, occupants: service.occupantCount() }),
      pruneExpired,
    });

    ctx.metric({
      name: "switchboard_muc_rooms",
      help: "Group chat rooms (persistent ones and those with occupants)",
      type: "gauge",
      collect: () => service.rooms.size,
    });
    ctx.metric({
      name: "switchboard_muc_occupants",
      help: "Occupants of group chat rooms",
      type: "gauge",
      collect: () => service.occupantCount(),
    });
    ctx.metric({
      name: "switchboard_muc_messages_total",
      help: "Group chat messages broadcast in rooms",
      type: "counter",
      collect: () => service.stats.messages,
    });
  },
});
