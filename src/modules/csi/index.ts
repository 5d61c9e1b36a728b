/**
 * Client state indication (XEP-0352). A client says <inactive/> when nobody looks at it
 * (a phone in a pocket) and <active/> when somebody does again; the server then saves
 * it traffic:
 *
 * - presence updates (available and unavailable) for an inactive session are held back,
 *   only the last one per sender (full JID) — what the client would have ended up
 *   showing — and written when it becomes active, in the order they last changed;
 * - everything else goes out at once: messages, IQs, presence subscriptions and errors,
 *   a room's presence about the user itself. Before such a stanza, the held presence of
 *   the same sender goes out, so what one entity sends still arrives in order
 *   (RFC 6120 §10.1); other senders' presences stay held;
 * - the held presences of a session are bounded (`maxHeldPresences`): past it they are
 *   all written and holding starts again.
 *
 * The state is per session (typed session state) and starts active. A session that
 * stream management resumes on another stream is active again (§5.2): the outbound
 * filter sees that the stream changed and writes what it held before anything else.
 * `<active/>` is handled before the client's next element (the engine handles a
 * stream's elements in order), so everything held is written before the answer to
 * whatever follows it (§5.1). A client binding with Bind 2 (XEP-0386) may say
 * <inactive/> inside its <bind/> request.
 *
 * The filter runs early (priority 100): filters that count what a client is sent
 * (stream management) must run after it, so held presences are counted when written.
 */
import { z } from "zod";
import { defineModule } from "../../core/module.js";
import type { ClientSession } from "../../core/session.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_CSI, NS_MUC_USER } from "../../core/xml/namespaces.js";

interface InactiveState {
  /** The stream the client said <inactive/> on (a resumed session gets a new one). */
  streamId: string;
  /** Last held presence per sender full JID, in the order of their last change. */
  held: Map<string, XmlElement>;
  /** Set while held stanzas are being written: the filter lets them through. */
  flushing: boolean;
}

/** Ahead of the filters that count what is written (stream management). */
const CSI_FILTER_PRIORITY = 100;

/** Presence updates that can wait: available or unavailable, not about the user in a room. */
function holdable(stanza: XmlElement): boolean {
  if (stanza.name !== "presence" || stanza.attrs.from === undefined) return false;
  const type = stanza.attrs.type;
  if (type !== undefined && type !== "unavailable") return false; // subscriptions, errors
  // XEP-0045 self-presence (status 110) tells the client it joined or left a room.
  const muc = stanza.getChild("x", NS_MUC_USER);
  return !muc?.getChildren("status").some((s) => s.attrs.code === "110");
}

function bareOf(jid: string): string {
  const slash = jid.indexOf("/");
  return slash < 0 ? jid : jid.slice(0, slash);
}

export default defineModule({
  name: "csi",
  description: "Holds back presence updates for clients that are not in use (XEP-0352)",
  xeps: [{ xep: "0352", version: "1.0.0", status: "complete" }],
  options: z.object({
    /** Presences held per inactive session before they are all written. */
    maxHeldPresences: z.number().int().min(1).default(100),
  }),
  setup(ctx) {
    const state = ctx.sessionState<InactiveState>();
    const max = ctx.options.maxHeldPresences;
    const stats = { held: 0, superseded: 0 };

    /** Writes held presences (those of `sender`, a bare JID, or all), oldest change first. */
    const flush = (session: ClientSession, st: InactiveState, sender?: string): void => {
      if (st.held.size === 0) return;
      const out: XmlElement[] = [];
      for (const [from, stanza] of st.held) {
        if (sender !== undefined && bareOf(from) !== sender) continue;
        out.push(stanza);
        st.held.delete(from);
      }
      if (out.length === 0) return;
      st.flushing = true;
      try {
        for (const stanza of out) session.send(stanza);
      } finally {
        st.flushing = false;
      }
    };

    const activate = (session: ClientSession): void => {
      const st = state.get(session);
      if (!st) return;
      flush(session, st);
      state.delete(session);
    };

    /** Nonzas with no answer (§4.2); anything else in the namespace is ignored likewise. */
    const indicate = (session: ClientSession, element: XmlElement): void => {
      if (element.name === "active") activate(session);
      else if (element.name === "inactive" && !state.get(session))
        state.set(session, { streamId: session.streamId, held: new Map(), flushing: false });
    };

    ctx.addStreamFeature({
      name: "csi",
      stage: "post-auth",
      offer: () => x("csi", { xmlns: NS_CSI }),
      namespaces: [NS_CSI],
      handle(session, element) {
        indicate(session, element);
      },
      // XEP-0386: a client binding with Bind 2 may say <inactive/> inside its <bind/>.
      bind2: {
        var: NS_CSI,
        elements: ["active", "inactive"],
        enable: (session, element) => {
          indicate(session, element);
          return undefined;
        },
      },
    });

    ctx.filter(
      "outbound",
      (session, stanza) => {
        const st = state.get(session);
        if (!st || st.flushing) return stanza;
        if (session.streamId !== st.streamId) {
          // Resumed on another stream: active again (§5.2); what was held goes first.
          activate(session);
          return stanza;
        }
        if (holdable(stanza)) {
          const from = stanza.attrs.from!;
          if (st.held.delete(from)) stats.superseded++;
          st.held.set(from, stanza);
          stats.held++;
          if (st.held.size > max) flush(session, st);
          return undefined;
        }
        const from = stanza.attrs.from;
        if (from !== undefined) flush(session, st, bareOf(from));
        return stanza;
      },
      CSI_FILTER_PRIORITY,
    );

    ctx.metric({
      name: "switchboard_csi_inactive_sessions",
      help: "Sessions whose client said it is inactive (XEP-0352)",
      type: "gauge",
      collect: () => {
        let n = 0;
        for (const s of ctx.sessions.all()) if (state.get(s)) n++;
        return n;
      },
    });
    ctx.metric({
      name: "switchboard_csi_presences_held_total",
      help: "Presence updates held back for inactive clients",
      type: "counter",
      collect: () => stats.held,
    });
    ctx.metric({
      name: "switchboard_csi_presences_superseded_total",
      help: "Held presence updates replaced by a newer one from the same sender before being written (never sent)",
      type: "counter",
      collect: () => stats.superseded,
    });
  },
});
