/**
 * Stream management (XEP-0198): acknowledgements, resumption, and delivery that loses
 * nothing when a client's connection dies.
 *
 * - `<sm/>` is offered after authentication. `<enable/>` (after binding) starts the two
 *   counters; an inbound filter that runs first counts what the client sends, an outbound
 *   filter that runs last keeps every stanza written to the client in an unacknowledged
 *   queue until an `<a/>` covers it. The server asks with `<r/>` once per burst.
 * - An `<r/>` unanswered for `ackTimeoutSeconds` marks the connection dead: it is dropped,
 *   which counts as a lost connection.
 * - When the connection of a resumable session is lost (`session/stream-lost`), the session
 *   is hibernated: it stays bound and available, and what is sent to it joins the queue.
 *   A `<resume/>` on any new authenticated stream of the same account, on any transport,
 *   within the timeout takes it over; the queue is sent again after the client's `h`. In a
 *   cluster, a `<resume/>` on another node than the one holding the session moves the
 *   session to that node first (handover.ts).
 * - A session that ends otherwise (resumption timeout, clean close, stream error) hands back
 *   what its client never acknowledged: messages go to the account's other resources or to
 *   offline storage with a XEP-0203 stamp of their first delivery; IQ requests are answered
 *   with an error; presence is dropped (the contact's state is re-sent at the next login).
 */
import { randomBytes } from "node:crypto";
import { StanzaError, StreamError } from "../../core/errors.js";
import { accountJid, Jid, tryParseJid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import type { NodeMessage } from "../../core/nodes.js";
import type { ClientSession } from "../../core/session.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";
import { messageType } from "../../core/xml/message-type.js";
import { NS_CLIENT, NS_DELAY, NS_SM, NS_STANZAS } from "../../core/xml/namespaces.js";
import type { OfflineMessageEvent } from "../message/index.js";
import type { StreamManagementApi } from "./api.js";
import { streamManagementConfigSection } from "./config.js";
import {
  HANDOVER_KIND,
  type HandoverAnswer,
  type MovedSession,
  parseHandoverAnswer,
  parseHandoverRequest,
} from "./handover.js";
import { advance, distance, HandledCountTooHigh, parseH, restoredQueue, UnackedQueue } from "./queue.js";

export type { StreamManagementApi } from "./api.js";

/** A hibernated (or still attached) session was taken over by a new stream of its client. */
export interface SessionResumedEvent {
  session: ClientSession;
}

declare module "../../core/events.js" {
  interface ServerEvents {
    /** XEP-0198: a session was resumed on a new stream (it stays bound and available throughout). */
    "session/resumed": SessionResumedEvent;
  }
}

/** Runs after every other outbound filter: what is queued is what is written. */
const OUTBOUND_PRIORITY = -1_000_000;
/** Runs before every other inbound filter: a stanza a filter takes was still received. */
const INBOUND_PRIORITY = 1_000_000;
/** With a request outstanding, ask again after this many more stanzas. */
const REREQUEST_EVERY = 100;
/** How long a node waits for another to hand a session over. */
const HANDOVER_TIMEOUT_MS = 5_000;

interface ResumeOutcome {
  answer: XmlElement;
  resumed?: SmState;
  /** The session came from another node: it is new here (`session/bound` fires for it). */
  arrived?: boolean;
}

interface Entry {
  stanza: XmlElement;
  /** When it was first handed to the session (its delay stamp if it has to go elsewhere). */
  at: number;
  /** Someone waits for its acknowledgement (offline storage) and keeps it when there is none. */
  outcome?: (acked: boolean) => void;
}

interface SmState {
  readonly session: ClientSession;
  readonly queue: UnackedQueue<Entry>;
  /** Stanzas received from the client since <enable/>, modulo 2^32 (its `h`). */
  inbound: number;
  /** The resumption id (SM-ID) when the session may be resumed. */
  readonly id: string | undefined;
  /** Seconds the session waits for a resumption. */
  readonly resumeSeconds: number;
  /** While the session waits for a resumption: the timer that ends it. */
  hibernation: NodeJS.Timeout | undefined;
  /** `sent` when the outstanding <r/> was written; undefined when none is outstanding. */
  requestedAt: number | undefined;
  /** Runs out when the outstanding <r/> stays unanswered (`ackTimeoutSeconds`). */
  ackTimer: NodeJS.Timeout | undefined;
  requestScheduled: boolean;
  overflowed: boolean;
  /**
   * While the unacknowledged queue is written again after a resumption, paced by the client's
   * reading: stanzas sent meanwhile are queued behind it (written by the same loop), so the
   * order on the wire stays the queue's, which the client's `h` counts. A token per resend: a
   * later resumption's loop replaces an earlier one that is still waiting.
   */
  resending: object | undefined;
}

function isStanzaElement(el: XmlElement): boolean {
  return (
    (el.name === "message" || el.name === "presence" || el.name === "iq") &&
    (el.attrs.xmlns === undefined || el.attrs.xmlns === NS_CLIENT)
  );
}

/** XEP-0198 <failed/>: a stanza error condition (its schema allows no text), and the `h` when known. */
function failed(condition: string, h?: number): XmlElement {
  return x(
    "failed",
    { xmlns: NS_SM, h: h === undefined ? undefined : String(h) },
    x(condition, { xmlns: NS_STANZAS }),
  );
}

/** XEP-0082 date-time without fractions, UTC. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export default defineModule({
  name: "stream-management",
  description: "Acknowledgements, resumption and re-queueing of unacknowledged stanzas (XEP-0198)",
  xeps: [
    {
      xep: "0198",
      version: "1.6.3",
      status: "complete",
      notes:
        "resumption on any transport, also inside SASL2, and on any node of a cluster (the session moves); enabled inside Bind 2; no 'location'",
    },
  ],
  dependencies: ["message"],
  config: streamManagementConfigSection,
  setup(ctx) {
    const { clock, log, sessionControl, router, sessions, storage, domain } = ctx;
    const settings = ctx.config.streamManagement;
    const state = ctx.sessionState<SmState>();
    /** Resumable sessions by SM-ID. */
    const byId = new Map<string, SmState>();
    /** Ended resumable sessions: SM-ID → account and the last `h` (XEP-0198 §5, `<failed h/>`). */
    const ended = new Map<string, { username: string; h: number }>();
    /** Re-queueing still writing to storage (awaited at unload). */
    const pending = new Set<Promise<unknown>>();
    const stats = {
      enabled: 0,
      hibernated: 0,
      resumed: 0,
      movedIn: 0,
      movedOut: 0,
      failedResumptions: 0,
      expired: 0,
      overflows: 0,
      ackTimeouts: 0,
      requeued: { offline: 0, resource: 0, bounced: 0, dropped: 0 },
    };
    /** Set by sendAcknowledged for the stanza it is sending; taken by the outbound filter. */
    let tracking: { session: ClientSession; outcome: (acked: boolean) => void } | undefined;

    ctx.addStreamFeature({
      name: "stream-management",
      stage: "post-auth",
      offer: () => x("sm", { xmlns: NS_SM }),
      namespaces: [NS_SM],
      handle: (session, el) => handle(session, el),
      // XEP-0198 §7.1: <enable/> inside a Bind 2 request; its answer goes into <bound/>.
      bind2: { var: NS_SM, elements: ["enable"], enable: (session, el) => enabling(session, el) },
    });

    // XEP-0198 §7.2: <resume/> inside a SASL2 <authenticate/>, handled once the account is proven.
    ctx.addStreamFeature({
      name: "stream-management-sasl2",
      stage: "pre-auth",
      offer: () => undefined,
      namespaces: [NS_SM],
      sasl2: {
        offer: () => x("sm", { xmlns: NS_SM }),
        authenticated: async (session, el) => {
          if (el.name !== "resume") return undefined;
          const outcome = await resuming(session, el);
          const resumed = outcome.resumed;
          return {
            answer: outcome.answer,
            resumed: resumed !== undefined,
            ...(resumed ? { afterSuccess: () => resendLogged(resumed, outcome.arrived) } : {}),
          };
        },
      },
    });

    const write = (session: ClientSession, el: XmlElement) => sessionControl.write(session, el);

    function handle(session: ClientSession, el: XmlElement): void | Promise<void> {
      switch (el.name) {
        case "enable":
          return enable(session, el);
        case "resume":
          return resume(session, el);
        case "r": {
          const st = state.get(session);
          if (!st) throw new StreamError("unsupported-stanza-type", "stream management is not enabled");
          write(session, x("a", { xmlns: NS_SM, h: String(st.inbound) }));
          return;
        }
        case "a": {
          const st = state.get(session);
          if (!st) throw new StreamError("unsupported-stanza-type", "stream management is not enabled");
          const h = parseH(el.attrs.h);
          if (h === undefined) throw new StreamError("bad-format", "<a/> needs an 'h' between 0 and 2^32-1");
          acknowledge(st, h);
          return;
        }
        default:
          throw new StreamError("unsupported-stanza-type", `<${el.name}/> in ${NS_SM}`);
      }
    }

    function enable(session: ClientSession, el: XmlElement): void {
      write(session, enabling(session, el));
    }

    /** <enable/> (on the stream or inside a Bind 2 request): the <enabled/> or <failed/> to answer. */
    function enabling(session: ClientSession, el: XmlElement): XmlElement {
      if (!session.bound || state.get(session)) return failed("unexpected-request");
      const wantsResume = el.attrs.resume === "true" || el.attrs.resume === "1";
      const asked = Number(el.attrs.max);
      const resumeSeconds =
        Number.isInteger(asked) && asked > 0
          ? Math.min(asked, settings.resumeTimeoutSeconds)
          : settings.resumeTimeoutSeconds;
      const resumable = wantsResume && resumeSeconds > 0;
      const id = resumable ? randomBytes(18).toString("base64url") : undefined;
      const st: SmState = {
        session,
        queue: new UnackedQueue<Entry>(),
        inbound: 0,
        id,
        resumeSeconds,
        hibernation: undefined,
        requestedAt: undefined,
        ackTimer: undefined,
        requestScheduled: false,
        overflowed: false,
        resending: undefined,
      };
      state.set(session, st);
      if (id) byId.set(id, st);
      stats.enabled++;
      return x("enabled", {
        xmlns: NS_SM,
        id,
        resume: resumable ? "true" : undefined,
        max: resumable ? String(resumeSeconds) : undefined,
      });
    }

    function resume(session: ClientSession, el: XmlElement): void | Promise<void> {
      const answered = (outcome: ResumeOutcome) => {
        if (!outcome.resumed) {
          write(session, outcome.answer);
          return;
        }
        write(outcome.resumed.session, outcome.answer);
        resendLogged(outcome.resumed, outcome.arrived);
      };
      const outcome = resuming(session, el);
      return outcome instanceof Promise ? outcome.then(answered) : answered(outcome);
    }

    /**
     * <resume/> (on the stream, or inside a SASL2 <authenticate/>): takes the kept session
     * over, or says why not. The caller writes the answer, then `resend`s what is unacknowledged.
     */
    function resuming(session: ClientSession, el: XmlElement): ResumeOutcome | Promise<ResumeOutcome> {
      if (session.bound || state.get(session)) return { answer: failed("unexpected-request") };
      const h = parseH(el.attrs.h);
      const previd = el.attrs.previd;
      if (h === undefined || !previd) {
        stats.failedResumptions++;
        return { answer: failed("bad-request") };
      }
      const st = byId.get(previd);
      if (!st) {
        // Held by another node of the cluster? The nodes holding the account's sessions are asked.
        const holders = nodesHolding(session);
        if (holders.length > 0) return resumeFrom(holders, session, previd, h);
      }
      if (!st || !sameAccount(st.session, session)) {
        stats.failedResumptions++;
        const gone = ended.get(previd);
        const known = gone !== undefined && gone.username === session.username;
        return { answer: failed("item-not-found", known ? gone.h : undefined) };
      }
      // Throws HandledCountTooHigh before anything changed: the kept session stays as it was.
      let acked: Entry[];
      try {
        acked = st.queue.ack(h);
      } catch (err) {
        if (err instanceof HandledCountTooHigh) throw tooHigh(err);
        throw err;
      }
      settle(acked);
      if (st.hibernation) {
        clearTimeout(st.hibernation);
        st.hibernation = undefined;
        stats.hibernated--;
      }
      const kept = st.session;
      sessionControl.resume(kept, session);
      stats.resumed++;
      st.requestedAt = undefined;
      stopAckTimer(st);
      return { answer: x("resumed", { xmlns: NS_SM, previd, h: String(st.inbound) }), resumed: st };
    }

    function resendLogged(st: SmState, arrived?: boolean): void {
      resend(st, arrived).catch((err) => log.error({ err }, "resending after a resumption failed"));
    }

    /**
     * After <resumed/>: what the client has not acknowledged, again, and the news for other
     * modules. Written as fast as the client reads (a queue larger than the send buffer would
     * otherwise cut the resumed client off again); stanzas sent meanwhile follow in order.
     */
    async function resend(st: SmState, arrived = false): Promise<void> {
      const kept = st.session;
      if (arrived) {
        ctx
          .fire("session/bound", { session: kept })
          .catch((err) => log.error({ err }, "session/bound handler failed"));
      }
      const run = {};
      st.resending = run;
      try {
        // The counter value of the next stanza to write: stable while acknowledgements arrive.
        let next = st.queue.acked;
        for (;;) {
          const entry = st.queue.at(distance(st.queue.acked, next));
          if (entry === undefined || !kept.attached || kept.closed) break;
          write(kept, entry.stanza);
          next = advance(next);
          await kept.whenWritable();
          if (st.resending !== run) return;
        }
      } finally {
        if (st.resending === run) st.resending = undefined;
      }
      if (kept.closed) return;
      if (st.queue.length > 0) scheduleRequest(st);
      log.debug({ session: kept.id, resent: st.queue.length }, "session resumed");
      ctx
        .fire("session/resumed", { session: kept })
        .catch((err) => log.error({ err }, "session/resumed handler failed"));
    }

    // ---- across the nodes of a cluster (handover.ts) ----

    /** Other nodes holding sessions of the stream's account (a resumable session stays bound while hibernated). */
    function nodesHolding(session: ClientSession): string[] {
      if (!ctx.nodes || !session.username) return [];
      const nodes = new Set<string>();
      for (const s of sessions.resourcesOf(session.username)) if (s.node !== undefined) nodes.add(s.node);
      return [...nodes];
    }

    /** Asks the nodes holding the account's sessions for the one with `previd`, and takes it over here. */
    async function resumeFrom(
      holders: string[],
      session: ClientSession,
      previd: string,
      h: number,
    ): Promise<ResumeOutcome> {
      let endedAt: number | undefined;
      for (const node of holders) {
        const answer = parseHandoverAnswer(
          await ctx.nodes!.ask(
            node,
            HANDOVER_KIND,
            { previd, username: session.username!, h },
            HANDOVER_TIMEOUT_MS,
          ),
        );
        if (!answer || answer.outcome === "unknown") continue;
        if (answer.outcome === "ended") {
          endedAt = answer.h;
          break;
        }
        if (answer.outcome === "too-high") throw tooHigh(new HandledCountTooHigh(answer.h, answer.sendCount));
        return arrive(session, previd, answer);
      }
      stats.failedResumptions++;
      return { answer: failed("item-not-found", endedAt) };
    }

    /** The session another node handed over becomes this stream's: same resource, presence and counters. */
    async function arrive(
      session: ClientSession,
      previd: string,
      moved: MovedSession,
    ): Promise<ResumeOutcome> {
      const entries: Entry[] = [];
      for (const q of moved.queue) {
        const stanza = parseElement(q.xml);
        if (stanza) entries.push({ stanza, at: q.at });
      }
      let jid: Jid | undefined;
      try {
        jid = await sessionControl.bind(session, moved.resource);
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
      }
      if (!jid) {
        // The old node let the session go: what it held goes back as for any session that ends.
        const username = session.username!;
        const bare = accountJid(username, domain);
        track(requeue(undefined, username, Jid.trusted(bare.local, bare.domain, moved.resource), entries));
        stats.failedResumptions++;
        return { answer: failed("item-not-found", moved.inbound) };
      }
      if (moved.presence !== undefined) session.presence = parseElement(moved.presence);
      session.priority = moved.priority;
      session.rosterRequested = moved.interested;
      for (const d of moved.directed) session.directedPresence.add(d);
      sessions.updated(session);
      const st: SmState = {
        session,
        queue: restoredQueue(moved.acked, entries),
        inbound: moved.inbound,
        id: previd,
        resumeSeconds: moved.resumeSeconds,
        hibernation: undefined,
        requestedAt: undefined,
        requestScheduled: false,
        overflowed: false,
        resending: undefined,
        ackTimer: undefined,
      };
      state.set(session, st);
      byId.set(previd, st);
      stats.resumed++;
      stats.movedIn++;
      log.debug({ session: session.id, jid: jid.toString(), unacked: entries.length }, "session moved here");
      return {
        answer: x("resumed", { xmlns: NS_SM, previd, h: String(moved.inbound) }),
        resumed: st,
        arrived: true,
      };
    }

    /** Another node's client resumes a session of this node: it is handed over and ends here, silently. */
    function handOver(previd: string, username: string, h: number): HandoverAnswer {
      const st = byId.get(previd);
      if (!st || st.session.username !== username || st.session.closed) {
        const gone = ended.get(previd);
        return gone && gone.username === username ? { outcome: "ended", h: gone.h } : { outcome: "unknown" };
      }
      let acked: Entry[];
      try {
        acked = st.queue.ack(h);
      } catch (err) {
        if (err instanceof HandledCountTooHigh)
          return { outcome: "too-high", h: err.h, sendCount: err.sendCount };
        throw err;
      }
      settle(acked);
      const session = st.session;
      const rest = st.queue.pending();
      // Whoever waits for an acknowledgement is told it was delivered: the stanza is in the
      // moved queue, and goes back to offline storage from there if the client never acknowledges it.
      settle(rest);
      const moved: MovedSession = {
        outcome: "moved",
        resource: session.resource ?? "",
        ...(session.presence ? { presence: session.presence.toString() } : {}),
        priority: session.priority,
        interested: session.rosterRequested,
        directed: [...session.directedPresence],
        inbound: st.inbound,
        acked: st.queue.acked,
        resumeSeconds: st.resumeSeconds,
        queue: rest.map((e) => ({ xml: e.stanza.toString(), at: e.at })),
      };
      state.delete(session);
      byId.delete(previd);
      stopAckTimer(st);
      if (st.hibernation) {
        clearTimeout(st.hibernation);
        st.hibernation = undefined;
        stats.hibernated--;
      }
      stats.movedOut++;
      // It stays available on its new node: no unavailable presence goes out from here.
      session.presence = undefined;
      session.directedPresence.clear();
      if (session.attached) session.close(new StreamError("conflict", "Replaced by a resumed stream"));
      else sessionControl.end(session, "resumed on another node");
      return moved;
    }

    if (ctx.nodes) {
      const stop = ctx.nodes.serve(HANDOVER_KIND, (body) => {
        const req = parseHandoverRequest(body);
        if (!req) return { outcome: "unknown" };
        return handOver(req.previd, req.username, req.h) as unknown as NodeMessage;
      });
      ctx.onUnload(stop);
    }

    function sameAccount(a: ClientSession, b: ClientSession): boolean {
      return a.username !== undefined && a.username === b.username && !a.closed;
    }

    function tooHigh(err: HandledCountTooHigh): StreamError {
      return new StreamError(
        "undefined-condition",
        `You acknowledged ${err.h} stanzas, but I only sent you ${err.sendCount} so far.`,
        x("handled-count-too-high", { xmlns: NS_SM, h: String(err.h), "send-count": String(err.sendCount) }),
      );
    }

    function acknowledge(st: SmState, h: number): void {
      let acked: Entry[];
      try {
        acked = st.queue.ack(h);
      } catch (err) {
        if (err instanceof HandledCountTooHigh) throw tooHigh(err);
        throw err;
      }
      settle(acked);
      stopAckTimer(st);
      if (st.requestedAt !== undefined) {
        st.requestedAt = undefined;
        // Stanzas written after the request are still unacknowledged: ask about them too.
        if (st.queue.length > 0) scheduleRequest(st);
      }
    }

    function settle(entries: Entry[]): void {
      for (const e of entries) e.outcome?.(true);
    }

    /** One <r/> after the current burst of stanzas (the end of this event-loop turn). */
    function scheduleRequest(st: SmState): void {
      if (st.requestScheduled) return;
      if (st.requestedAt !== undefined && st.queue.sent - st.requestedAt < REREQUEST_EVERY) return;
      st.requestScheduled = true;
      setImmediate(() => {
        st.requestScheduled = false;
        if (st.session.closed || st.queue.length === 0) return;
        if (write(st.session, x("r", { xmlns: NS_SM }))) {
          st.requestedAt = st.queue.sent;
          startAckTimer(st);
        }
      });
    }

    /**
     * XEP-0198 §4: an unanswered request means the connection is most likely dead, though the
     * socket may take many minutes to tell. The deadline runs from the first unanswered <r/>.
     */
    function startAckTimer(st: SmState): void {
      if (st.ackTimer || settings.ackTimeoutSeconds === 0) return;
      st.ackTimer = setTimeout(() => {
        st.ackTimer = undefined;
        const session = st.session;
        if (session.closed || !session.attached || st.requestedAt === undefined) return;
        stats.ackTimeouts++;
        log.info(
          { session: session.id, jid: session.jid?.toString(), unacked: st.queue.length },
          "no acknowledgement in time: connection dropped",
        );
        sessionControl.drop(session, "ack-timeout");
      }, settings.ackTimeoutSeconds * 1000);
      st.ackTimer.unref();
    }

    function stopAckTimer(st: SmState): void {
      if (!st.ackTimer) return;
      clearTimeout(st.ackTimer);
      st.ackTimer = undefined;
    }

    // ---- counting ----

    ctx.filter(
      "inbound",
      (session, stanza) => {
        const st = state.get(session);
        if (st) st.inbound = (st.inbound + 1) % 2 ** 32;
        return stanza;
      },
      INBOUND_PRIORITY,
    );

    ctx.filter(
      "outbound",
      (session, stanza) => {
        const st = state.get(session);
        if (!st || !isStanzaElement(stanza)) return stanza;
        const entry: Entry = { stanza, at: clock.now() };
        if (tracking?.session === session) {
          entry.outcome = tracking.outcome;
          tracking = undefined;
        }
        st.queue.push(entry);
        if (st.queue.length > settings.maxUnackedStanzas) overflow(st);
        else if (session.attached) scheduleRequest(st);
        // Behind a resumption's resend: that loop writes it in its turn.
        return st.resending ? undefined : stanza;
      },
      OUTBOUND_PRIORITY,
    );

    /**
     * The client does not acknowledge what it is sent: the session ends (RFC 6120
     * `resource-constraint`: the server will not hold more for it), and what it holds goes
     * back like for any session that ends. Deferred: this runs inside a send.
     */
    function overflow(st: SmState): void {
      if (st.overflowed) return;
      st.overflowed = true;
      stats.overflows++;
      queueMicrotask(() => {
        const session = st.session;
        log.info(
          { session: session.id, jid: session.jid?.toString(), unacked: st.queue.length },
          "too many unacknowledged stanzas: session closed",
        );
        const error = new StreamError("resource-constraint", "too many unacknowledged stanzas");
        if (session.attached) session.close(error);
        else sessionControl.end(session, error.condition);
      });
    }

    // ---- hibernation ----

    ctx.hook("session/stream-lost", ({ session }) => {
      const st = state.get(session);
      if (!st?.id || st.overflowed) return false;
      sessionControl.hibernate(session, () => {
        // Already queued by the outbound filter; sent again at resumption.
      });
      stats.hibernated++;
      st.requestedAt = undefined;
      stopAckTimer(st);
      st.hibernation = setTimeout(() => {
        st.hibernation = undefined;
        stats.hibernated--;
        stats.expired++;
        sessionControl.end(session, "resumption timeout");
      }, st.resumeSeconds * 1000);
      st.hibernation.unref();
      log.debug({ session: session.id, unacked: st.queue.length }, "session hibernated");
      return true;
    });

    // ---- the end of a session: what was not acknowledged goes back ----

    ctx.hook(
      "session/ended",
      ({ session }) => {
        const st = state.get(session);
        if (!st) return false;
        state.delete(session);
        stopAckTimer(st);
        if (st.hibernation) {
          clearTimeout(st.hibernation);
          st.hibernation = undefined;
          stats.hibernated--;
        }
        if (st.id) {
          byId.delete(st.id);
          remember(st.id, session.username ?? "", st.inbound);
        }
        const rest = st.queue.drain();
        if (rest.length > 0 && session.jid && session.username)
          track(requeue(session, session.username, session.jid, rest));
        return false;
      },
      100,
    );

    function remember(id: string, username: string, h: number): void {
      if (settings.rememberEndedSessions === 0) return;
      ended.set(id, { username, h });
      if (ended.size > settings.rememberEndedSessions) ended.delete(ended.keys().next().value!);
    }

    function track(p: Promise<void>): void {
      const t = p
        .catch((err) => log.error({ err }, "re-queueing unacknowledged stanzas failed"))
        .finally(() => pending.delete(t));
      pending.add(t);
    }

    /**
     * What a session of account `username` (account key), bound as `jid`, held unacknowledged
     * goes back; `session` is undefined when it never got bound here (a failed move).
     */
    async function requeue(
      session: ClientSession | undefined,
      username: string,
      jid: Jid,
      entries: Entry[],
    ): Promise<void> {
      for (const entry of entries) {
        if (entry.outcome) {
          entry.outcome(false);
          continue;
        }
        const stanza = entry.stanza;
        const type = stanza.attrs.type;
        if (stanza.name === "iq") {
          if (type === "get" || type === "set") {
            router.bounce(stanza, new StanzaError("service-unavailable", "the recipient's session ended"));
            stats.requeued.bounced++;
          } else stats.requeued.dropped++;
          continue;
        }
        if (stanza.name !== "message") {
          stats.requeued.dropped++;
          continue;
        }
        const kind = messageType(stanza);
        if (kind === "groupchat") {
          router.bounce(stanza, new StanzaError("service-unavailable", "the recipient's session ended"));
          stats.requeued.bounced++;
          continue;
        }
        if (kind !== "chat" && kind !== "normal") {
          // RFC 6121 §8.5.3.2.1: headlines and errors for a resource that is gone are dropped.
          stats.requeued.dropped++;
          continue;
        }
        const targets = sessions.messageTargets(username).filter((s) => s !== session && !s.closed);
        if (targets.length > 0) {
          const copy = stanza.clone();
          if (!copy.getChild("delay", NS_DELAY))
            copy.children.push(x("delay", { xmlns: NS_DELAY, from: jid.domain, stamp: stamp(entry.at) }));
          for (const t of targets) t.send(copy);
          stats.requeued.resource++;
          continue;
        }
        const from = tryParseJid(stanza.attrs.from) ?? (tryParseJid(domain) as Jid);
        const stored =
          (await storage.accounts.exists(username)) &&
          (await ctx.fire("message/offline", {
            stanza,
            from,
            to: jid.bare(),
            delayedSince: entry.at,
          } satisfies OfflineMessageEvent));
        if (stored) stats.requeued.offline++;
        else {
          router.bounce(stanza, new StanzaError("service-unavailable", "the recipient is offline"));
          stats.requeued.bounced++;
        }
      }
    }

    // ---- what others use ----

    ctx.provide<StreamManagementApi>({
      sendAcknowledged(session, stanza, outcome) {
        if (!state.get(session) || session.closed) return false;
        tracking = { session, outcome };
        session.send(stanza);
        if (tracking !== undefined) {
          // Not queued: a filter took it (it answers for it now) or the session just ended.
          tracking = undefined;
          outcome(!session.closed);
        }
        return true;
      },
      enabled: (session) => state.get(session) !== undefined,
      hibernated: (session) => state.get(session)?.hibernation !== undefined,
    });

    // ---- metrics ----

    ctx.metric({
      name: "switchboard_sm_sessions_hibernated",
      help: "Sessions waiting for their client to resume them (XEP-0198)",
      type: "gauge",
      collect: () => stats.hibernated,
    });
    ctx.metric({
      name: "switchboard_sm_enabled_total",
      help: "Sessions that enabled stream management",
      type: "counter",
      collect: () => stats.enabled,
    });
    ctx.metric({
      name: "switchboard_sm_resumptions_total",
      help: "Sessions resumed on a new stream",
      type: "counter",
      collect: () => stats.resumed,
    });
    ctx.metric({
      name: "switchboard_sm_moved_sessions_total",
      help: "Sessions resumed on another node of the cluster than the one holding them, by direction",
      type: "counter",
      labelNames: ["direction"],
      collect: () => [
        [{ direction: "in" }, stats.movedIn],
        [{ direction: "out" }, stats.movedOut],
      ],
    });
    ctx.metric({
      name: "switchboard_sm_failed_resumptions_total",
      help: "Resumption attempts refused (unknown or expired id, another account's, malformed)",
      type: "counter",
      collect: () => stats.failedResumptions,
    });
    ctx.metric({
      name: "switchboard_sm_resumption_timeouts_total",
      help: "Hibernated sessions ended because no client resumed them in time",
      type: "counter",
      collect: () => stats.expired,
    });
    ctx.metric({
      name: "switchboard_sm_queue_overflows_total",
      help: "Sessions ended for holding too many unacknowledged stanzas",
      type: "counter",
      collect: () => stats.overflows,
    });
    ctx.metric({
      name: "switchboard_sm_ack_timeouts_total",
      help: "Connections dropped because the client did not answer a request for acknowledgement in time",
      type: "counter",
      collect: () => stats.ackTimeouts,
    });
    ctx.metric({
      name: "switchboard_sm_requeued_stanzas_total",
      help: "Unacknowledged stanzas of ended sessions, by what became of them",
      type: "counter",
      labelNames: ["outcome"],
      collect: () => Object.entries(stats.requeued).map(([outcome, n]) => [{ outcome }, n] as const),
    });

    ctx.onUnload(async () => {
      for (const st of byId.values()) {
        if (st.hibernation) clearTimeout(st.hibernation);
        stopAckTimer(st);
      }
      while (pending.size > 0) await Promise.all([...pending]);
    });
  },
});
