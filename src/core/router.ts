/**
 * The stanza router. Stanzas from local clients pass the `pre-<kind>` hooks and
 * are then delivered: to a local address through the `<kind>/host|bare|full`
 * hooks, or to another domain through a remote route (server-to-server,
 * component, cluster node) that later layers register.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { errorReply, StanzaError } from "./errors.js";
import type { ServerEvents, StanzaKind } from "./events.js";
import type { HookBus } from "./hooks.js";
import { type Jid, JidError, parseJid } from "./jid.js";
import { failureKind, LogThrottle } from "./log-throttle.js";
import type { ClientSession } from "./session.js";
import { isStorageFull, storageFullError } from "./storage/full.js";
import { isStorageUnavailable, storageUnavailableError } from "./storage/unavailable.js";
import { setPreparedTo } from "./written-address.js";
import type { XmlElement } from "./xml/element.js";

/**
 * Where stanzas for one domain go when it is not a served domain: a service on a subdomain
 * (group chat, upload), a component, another cluster node. `deliver` takes the stanza
 * (its 'from' is trusted); failures come back as error stanzas through Router.deliver.
 */
export interface Route {
  /** "service", "component", "s2s", "cluster"…: for logs and metrics. */
  readonly kind: string;
  deliver(stanza: XmlElement, from: Jid, to: Jid): void | Promise<void>;
}

/** A path out of this server for stanzas to any other domain it can reach (server-to-server, cluster). */
export interface RemoteRoute {
  /** "s2s", "component", "cluster", …: for logs and metrics. */
  readonly kind: string;
  /** Higher wins when several routes can take a domain (components before s2s). */
  readonly priority: number;
  canRoute(domain: string): boolean;
  /** Takes the stanza for delivery; delivery failures come back as error stanzas through deliver(). */
  send(stanza: XmlElement, to: Jid): void;
}

const KINDS = new Set<string>(["message", "presence", "iq"]);

export function isStanza(el: XmlElement): el is XmlElement & { name: StanzaKind } {
  return KINDS.has(el.name) && el.attrs.xmlns === undefined;
}

type Done = void | Promise<void>;

/** Storage failures the router answers as what they are, not as an internal error. */
const STORAGE_FAILURES = [
  {
    recognise: isStorageFull,
    stat: "storageFull",
    log: "the storage is full: stanzas that need a write are refused (resource-constraint)",
    answer: storageFullError,
  },
  {
    recognise: isStorageUnavailable,
    stat: "storageUnavailable",
    log: "the storage cannot be reached: stanzas that need it are refused (internal-server-error, type wait)",
    answer: storageUnavailableError,
  },
] as const;

/**
 * Routes by domain: the served domains (virtual hosts) deliver through the
 * `<kind>/host|bare|full` hooks; other domains through the route a module registered for
 * exactly that domain, else through a remote route that can take it; else the sender gets
 * remote-server-not-found.
 */
export class Router {
  private readonly routes: RemoteRoute[] = [];
  private readonly hosts = new Set<string>();
  private readonly domainRoutes = new Map<string, Route>();
  /** IQ requests the server sent, waiting for their result, by requester, entity asked and id (pendingKey). */
  private readonly pendingIq = new Map<string, { resolve: (r: XmlElement) => void; timer: NodeJS.Timeout }>();
  private iqSeq = 0;
  /**
   * In a cluster: this node's name, put into the ids of the server's requests, and where a
   * reply to another node's request goes (the client that answers may be bound on any node).
   */
  private requestNode: { name: string; relay(node: string, reply: XmlElement): void } | undefined;
  /** Counters read by metrics and the admin console. */
  readonly stats = { routedLocal: 0, routedRemote: 0, errors: 0, storageFull: 0, storageUnavailable: 0 };
  /** Handler failures come in floods when storage fails: each kind is logged once per window. */
  private readonly failures: LogThrottle;

  constructor(
    /** The primary served domain (server-generated stanzas come from it). */
    readonly domain: string,
    private readonly hooks: HookBus<ServerEvents>,
    private readonly log: Logger,
  ) {
    this.hosts.add(domain);
    this.failures = new LogThrottle(log);
  }

  /** Serves another domain (a virtual host) locally; returns the function that stops it. */
  addHost(domain: string): () => void {
    if (this.hosts.has(domain)) throw new Error(`${domain} is already served`);
    this.hosts.add(domain);
    return () => {
      if (domain !== this.domain) this.hosts.delete(domain);
    };
  }

  /** The served domains. */
  servedDomains(): string[] {
    return [...this.hosts];
  }

  /** Routes one domain that is not served here (a service, a component); returns the removal. */
  addRoute(domain: string, route: Route): () => void {
    if (this.hosts.has(domain)) throw new Error(`${domain} is a served domain`);
    if (this.domainRoutes.has(domain)) throw new Error(`${domain} already has a route`);
    this.domainRoutes.set(domain, route);
    return () => {
      if (this.domainRoutes.get(domain) === route) this.domainRoutes.delete(domain);
    };
  }

  /** The route registered for a domain, if any. */
  routeOf(domain: string): Route | undefined {
    return this.domainRoutes.get(domain);
  }

  addRemoteRoute(route: RemoteRoute): () => void {
    this.routes.push(route);
    this.routes.sort((a, b) => b.priority - a.priority);
    return () => {
      const i = this.routes.indexOf(route);
      if (i >= 0) this.routes.splice(i, 1);
    };
  }

  /** Is the domain served here (a local account's domain)? */
  isLocalDomain(domain: string): boolean {
    return this.hosts.has(domain);
  }

  /** Handles a stanza sent by a bound local client: stamps 'from', validates 'to', runs pre-hooks, routes. */
  fromClient(session: ClientSession, stanza: XmlElement & { name: StanzaKind }): Done {
    const from = session.jid!;
    stanza.attrs.from = from.toString();
    let to: Jid | undefined;
    const toAttr = stanza.attrs.to;
    if (toAttr !== undefined) {
      try {
        to = parseJid(toAttr);
      } catch (err) {
        if (!(err instanceof JidError)) throw err;
        // The reply comes from the server: the malformed address cannot be its sender.
        stanza.attrs.to = this.domain;
        this.bounce(stanza, new StanzaError("jid-malformed", err.message), from);
        return;
      }
      setPreparedTo(stanza, to);
    }
    const ev = { stanza, session, from, to };
    return this.continueWith(
      () => this.hooks.fire(`pre-${stanza.name}`, ev),
      stanza,
      from,
      (claimed) => {
        if (claimed) return;
        // RFC 6120 §10.3: a stanza without 'to' is handled on behalf of the sender's account.
        const target = to ?? from.bare();
        if (to === undefined && stanza.name === "presence") return; // broadcast is the presence module's job
        return this.deliver(stanza, from, target, session);
      },
      session,
    );
  }

  /**
   * Delivers a stanza whose 'from' is trusted (set by the server or a verified remote).
   * `origin` is the local session it came from, if any.
   */
  deliver(stanza: XmlElement, from: Jid, to: Jid, origin?: ClientSession): Done {
    if (!this.hosts.has(to.domain)) {
      const route = this.domainRoutes.get(to.domain);
      if (route) {
        this.stats.routedLocal++;
        return this.continueWith(
          () => {
            const r = route.deliver(stanza, from, to);
            return r instanceof Promise ? r.then(() => true) : true;
          },
          stanza,
          from,
          () => undefined,
        );
      }
      return this.deliverRemote(stanza, from, to);
    }
    this.stats.routedLocal++;
    const kind = stanza.name as StanzaKind;
    const target = to.local === "" ? "host" : to.resource === "" ? "bare" : "full";
    if (to.local === "" && to.resource !== "") {
      // domain/resource addresses are not used by this server
      return this.unhandled(stanza, from);
    }
    const ev = { stanza, from, to, ...(origin ? { origin } : {}) };
    return this.continueWith(
      () => this.hooks.fire(`${kind}/${target}`, ev),
      stanza,
      from,
      (claimed) => {
        if (!claimed) this.unhandled(stanza, from);
      },
      origin,
    );
  }

  /** Sends a stanza generated by the server itself (from the domain or on behalf of an account). */
  send(stanza: XmlElement): Done {
    const to = stanza.attrs.to;
    const from = stanza.attrs.from;
    if (to === undefined || from === undefined) throw new Error("server-generated stanza needs from and to");
    return this.deliver(stanza, parseJid(from), parseJid(to));
  }

  /**
   * Sends an IQ get/set from the server's domain and resolves with the reply (result or
   * error), or with undefined after `timeoutMs`. Used e.g. to ask a client its software version.
   * `from` sends it on behalf of a local account's bare JID instead (a PEP service asking a
   * client's capabilities, XEP-0163), whose reply comes back to that JID; `id` asks for a
   * given id (taken unless a request with the same requester, entity and id is pending, or the
   * reply may have to cross the cluster, whose routing needs the node in the id).
   */
  request(
    iq: XmlElement,
    to: Jid,
    timeoutMs = 10_000,
    opts: { from?: Jid; id?: string } = {},
  ): Promise<XmlElement | undefined> {
    const requester = opts.from?.toString() ?? this.domain;
    const asked = to.toString();
    let id = opts.id;
    if (id === undefined || this.requestNode || this.pendingIq.has(pendingKey(requester, asked, id))) {
      const seq = `${(++this.iqSeq).toString(36)}-${randomBytes(4).toString("hex")}`;
      id = this.requestNode ? `sb.${this.requestNode.name}.${seq}` : `sb-${seq}`;
    }
    const key = pendingKey(requester, asked, id);
    iq.attrs.id = id;
    iq.attrs.from = requester;
    iq.attrs.to = asked;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingIq.delete(key);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
      this.pendingIq.set(key, { resolve, timer });
      const r = this.deliver(iq, opts.from ?? parseJid(this.domain), to);
      if (r) r.catch((err) => this.log.error({ err }, "sending a server IQ failed"));
    });
  }

  /**
   * Names this node in the ids of the server's requests (node names hold no '.'), and hands
   * replies to requests another node made to `relay`; returns the function that stops it.
   */
  relayResponses(node: string, relay: (node: string, reply: XmlElement) => void): () => void {
    const entry = { name: node, relay };
    this.requestNode = entry;
    return () => {
      if (this.requestNode === entry) this.requestNode = undefined;
    };
  }

  /**
   * Hands a result/error IQ addressed to the domain (or to a local account's bare JID, `to`)
   * to the request waiting for it, or to the node that made the request; false if nothing
   * waits for it.
   */
  resolveResponse(stanza: XmlElement, to?: Jid): boolean {
    const id = stanza.attrs.id;
    if (id === undefined) return false;
    const requester = to?.toString() ?? normalJid(stanza.attrs.to) ?? this.domain;
    const from = normalJid(stanza.attrs.from);
    // Only the entity that was asked may answer (ids alone are guessable).
    const key = from === undefined ? undefined : pendingKey(requester, from, id);
    const pending = key === undefined ? undefined : this.pendingIq.get(key);
    if (!pending && this.requestNode) {
      const asker = /^sb\.([A-Za-z0-9_-]+)\./.exec(id)?.[1];
      if (asker !== undefined && asker !== this.requestNode.name) {
        // The asking node checks that the answer comes from the entity it asked.
        this.requestNode.relay(asker, stanza);
        return true;
      }
    }
    if (!pending) return false;
    this.pendingIq.delete(key!);
    clearTimeout(pending.timer);
    pending.resolve(stanza);
    return true;
  }

  /** Answers a stanza with an error (never an error with an error). */
  bounce(stanza: XmlElement, error: StanzaError, replyTo?: Jid): void {
    const reply = errorReply(stanza, error);
    if (!reply) return;
    this.stats.errors++;
    if (reply.attrs.from === undefined) reply.attrs.from = this.domain;
    const to = replyTo ?? (reply.attrs.to !== undefined ? safeJid(reply.attrs.to) : undefined);
    if (!to) return;
    const from = safeJid(reply.attrs.from) ?? safeJid(this.domain)!;
    const r = this.deliver(reply, from, to);
    if (r) r.catch((err) => this.log.error({ err }, "delivering an error reply failed"));
  }

  private deliverRemote(stanza: XmlElement, from: Jid, to: Jid): void {
    for (const route of this.routes) {
      if (route.canRoute(to.domain)) {
        this.stats.routedRemote++;
        route.send(stanza, to);
        return;
      }
    }
    this.bounce(stanza, new StanzaError("remote-server-not-found"), from);
  }

  /** Nobody claimed a stanza to a local address: IQ requests and messages get an error, the rest is dropped. */
  private unhandled(stanza: XmlElement, from: Jid): void {
    const type = stanza.attrs.type;
    if (
      stanza.name === "iq"
        ? type === "get" || type === "set"
        : stanza.name === "message" && type !== "groupchat"
    ) {
      this.bounce(stanza, new StanzaError("service-unavailable"), from);
    }
  }

  /** Continues after a hook result, turning thrown StanzaErrors into error replies. */
  private continueWith(
    fire: () => boolean | Promise<boolean>,
    stanza: XmlElement,
    from: Jid,
    next: (claimed: boolean) => Done,
    origin?: ClientSession,
  ): Done {
    let result: boolean | Promise<boolean>;
    try {
      result = fire();
    } catch (err) {
      this.fail(stanza, from, err, origin);
      return;
    }
    if (typeof result === "boolean") return next(result);
    return result.then(next).catch((err: unknown) => this.fail(stanza, from, err, origin));
  }

  /**
   * Answers a stanza whose handling failed. The answer to a local client's own stanza goes
   * straight to its session (as Prosody's origin.send does): routed, it would run the hooks
   * that just failed (a storage that cannot be reached) and be dropped as an error on an error.
   */
  fail(stanza: XmlElement, from: Jid, err: unknown, origin?: ClientSession): void {
    const answer = (error: StanzaError) => {
      if (origin && origin.jid?.toString() === from.toString()) this.answerDirectly(origin, stanza, error);
      else this.bounce(stanza, error, from);
    };
    if (err instanceof StanzaError) {
      answer(err);
      return;
    }
    for (const storage of STORAGE_FAILURES) {
      if (!storage.recognise(err)) continue;
      this.stats[storage.stat]++;
      this.failures.error(storage.stat, { err }, storage.log);
      answer(storage.answer());
      return;
    }
    this.failures.error(
      `handler:${failureKind(err)}`,
      { err, stanza: stanza.toString().slice(0, 500) },
      "stanza handler failed",
    );
    answer(new StanzaError("internal-server-error"));
  }

  /** The error reply to a session's own stanza, sent to that session without routing. */
  private answerDirectly(origin: ClientSession, stanza: XmlElement, error: StanzaError): void {
    const reply = errorReply(stanza, error);
    if (!reply) return;
    this.stats.errors++;
    if (reply.attrs.from === undefined) reply.attrs.from = this.domain;
    reply.attrs.to = origin.jid!.toString();
    origin.send(reply);
  }
}

/** Who asked whom, under which id: a request's key among those pending. */
function pendingKey(requester: string, asked: string, id: string): string {
  return `${requester}\n${asked}\n${id}`;
}

/** A JID attribute in its normal form, as requests name their parties; undefined when absent or invalid. */
function normalJid(s: string | undefined): string | undefined {
  return s === undefined ? undefined : safeJid(s)?.toString();
}

function safeJid(s: string): Jid | undefined {
  try {
    return parseJid(s);
  } catch {
    return undefined;
  }
}
