/**
 * An @xmpp/client client that proves its licence to a Switchboard server.
 *
 * After TLS and before SASL the server offers
 *   <licence xmlns='urn:switchboard:client-licence:0' mode='…' cutoff='…'>
 *     <nonce>…</nonce><channel-binding type='tls-exporter'/></licence>
 * beside the SASL mechanisms; the client answers with a signed <proof/> and the
 * server with <success/> or a stream error (docs/licensing-protocol.md).
 *
 * Where the step runs: @xmpp/client 0.14 negotiates stream features with a
 * middleware chain run in registration order, and its client() factory
 * registers STARTTLS, SASL2 and SASL itself; the SASL handlers end the chain,
 * so a feature handler added afterwards would never run before authentication.
 * When the server lists the proof inline in its SASL2 feature, the proof rides
 * inside <authenticate/> (protocol §2.6) through @xmpp/client's SASL2 inline
 * hook, which runs before the credentials are asked for. Otherwise both SASL
 * handlers call the `credentials` callback before they send <auth/> (or
 * <authenticate/>), so the proof runs there on its own: once TLS is up, on the
 * features that offered SASL, and before the password is used.
 */
import type { KeyObject } from "node:crypto";
import { TLSSocket } from "node:tls";
import { type Authenticate, type Client, type ClientOptions, client, type Element, xml } from "@xmpp/client";
import { channelBindingData, isBindingType } from "./binding.js";
import {
  type BindingType,
  canonicalProofString,
  LICENCE_NS,
  licenceProof,
  loadPrivateKey,
  type ProofInput,
  ticketProof,
} from "./proof.js";
import {
  type LicenceRefusedError,
  licenceRefusal,
  refusalFromSaslFailure,
  refusalFromStreamError,
} from "./refusal.js";
import { startOnline } from "./start-online.js";

const NS_STREAM = "http://etherx.jabber.org/streams";
const NS_SASL2 = "urn:xmpp:sasl:2";

/** Who the client is and the key it proves it with. */
export interface LicenceOptions {
  /** The app's client id, e.g. "com.example.chat". */
  clientId: string;
  /** This build's dotted numeric version, e.g. "5.0.1". */
  version: string;
  /** Platform in lower case, e.g. "linux", "android". */
  platform: string;
  /** Id of the registered key that signs. */
  keyId: string;
  /** The Ed25519 private key: PEM text (as written by `switchboard keygen`) or a KeyObject. */
  privateKeyPem: string | KeyObject;
  /**
   * Where the ticket a signed proof earns is kept (protocol section 2.5); later logins prove
   * with it, without a signature, until it expires. Default: in memory, for this client object.
   * `false`: never use tickets.
   */
  tickets?: TicketStore | false;
}

/** A licence ticket and its secret, as the server handed them out. */
export interface LicenceTicket {
  ticket: string;
  secret: Uint8Array;
  /** When the server stops accepting it (ms since the epoch). */
  expiresAt: number;
}

/** Keeps one ticket; an app may persist it (it is a secret: store it as carefully as the key). */
export interface TicketStore {
  get(): LicenceTicket | undefined;
  set(ticket: LicenceTicket | undefined): void;
}

/** Tickets are not used in their last minute, so clock differences do not cost a login. */
const TICKET_MARGIN_MS = 60_000;

function memoryTicketStore(): TicketStore {
  let held: LicenceTicket | undefined;
  return {
    get: () => held,
    set: (t) => {
      held = t;
    },
  };
}

export interface LicensedClientOptions extends ClientOptions {
  licence: LicenceOptions;
}

/** What the server offered on the stream where the client authenticated. */
export interface LicenceOffer {
  /** The network's mode now: "open", "warn" or "enforce". */
  mode: string;
  /** The next scheduled enforcement instant (ISO 8601), when one is scheduled. */
  cutoff?: string;
  nonce: string;
  bindingType: BindingType;
}

/** The server's <success/>. */
export interface LicenceAccepted {
  offer: LicenceOffer;
  /** The proof was made with a ticket rather than a signature. */
  resumed: boolean;
  /** A newer version the operator recommends, with where to get it. */
  recommended?: { version: string; url?: string };
}

/** The licence step of the latest connection. */
export interface LicenceState {
  /** Undefined when the server offered no <licence/> feature (a server without licensing). */
  offer?: LicenceOffer;
  accepted?: LicenceAccepted;
  refused?: LicenceRefusedError;
}

/**
 * An @xmpp/client Client with `licence` (the state above). Extra events:
 * "licence" (LicenceAccepted) after <success/>, "licence-refused"
 * (LicenceRefusedError) when the server refuses the client, at login or later
 * on a live session, and "licence-retry" when `start()` closes a connection whose
 * SASL2 attempt failed on a refused ticket, to sign on a new one. After a refusal the client stops reconnecting: the same
 * build would be refused again. `start()` rejects with the LicenceRefusedError.
 */
export type LicensedClient = Client & { readonly licence: LicenceState };

/** The parts of @xmpp/client's Connection used here that its public surface does not describe. */
/** @xmpp/client's SASL2 plug-in: inline features (request builder, success handler) by namespace. */
interface Sasl2Internals {
  sasl2: {
    use(
      xmlns: string,
      request: (offered: Element) => Element | undefined,
      answer: (el: Element) => void,
    ): void;
  };
}

interface ConnectionInternals {
  sendReceive(element: Element, timeout?: number): Promise<Element>;
  socket: { socket?: unknown } | null;
  timeout: number;
}

/**
 * The TLS socket a connection runs on: @xmpp/client's TCP/TLS socket itself, or, over
 * WebSocket in Node (@xmpp/websocket on the `ws` package), the TLS socket under the
 * WebSocket. A browser's WebSocket keeps its TLS to itself: undefined then.
 */
function tlsSocketOf(socket: unknown): TLSSocket | undefined {
  if (socket instanceof TLSSocket) return socket;
  const under = (socket as { _socket?: unknown } | null | undefined)?._socket;
  return under instanceof TLSSocket ? under : undefined;
}

function checkLicenceOptions(l: LicenceOptions): void {
  // Builds a canonical string once, so a bad field fails at construction, not at login.
  canonicalProofString({
    domain: "check",
    streamId: "check",
    nonce: "check",
    bindingType: "none",
    clientId: l.clientId,
    version: l.version,
    platform: l.platform,
    keyId: l.keyId,
  });
  if (!/^\d+(\.\d+)*$/.test(l.version))
    throw new TypeError(`licence: "${l.version}" is not a dotted version`);
}

function readOffer(feature: Element): LicenceOffer {
  const nonce = feature.getChildText("nonce", LICENCE_NS) ?? feature.getChildText("nonce");
  if (!nonce) throw new Error("licence: the server's <licence/> feature has no nonce");
  const cb = feature.getChild("channel-binding", LICENCE_NS) ?? feature.getChild("channel-binding");
  const type = cb?.attrs.type;
  if (type !== undefined && !isBindingType(type)) {
    throw new Error(`licence: unsupported channel binding "${type}"`);
  }
  return {
    mode: feature.attrs.mode ?? "open",
    ...(feature.attrs.cutoff ? { cutoff: feature.attrs.cutoff } : {}),
    nonce,
    bindingType: type ?? "none",
  };
}

export function licensedClient(options: LicensedClientOptions): LicensedClient {
  const { licence, credentials, ...clientOptions } = options;
  checkLicenceOptions(licence);
  const privateKey = loadPrivateKey(licence.privateKeyPem);
  const tickets = licence.tickets === false ? undefined : (licence.tickets ?? memoryTicketStore());

  const state: LicenceState = {};
  let streamId: string | undefined;
  let features: Element | undefined;
  /** The proof sent inside SASL2's <authenticate/> on this connection, if it went that way. */
  let inline: { offer: LicenceOffer; resumed: boolean } | undefined;
  /** The server refused the ticket sent inside SASL2 during the current start(). */
  let ticketRefusedInline = false;

  /** The proof for the current stream: with the held ticket unless `signed`, else a signature. */
  function makeProof(signed: boolean): { proof: Element; offer: LicenceOffer; resumed: boolean } | undefined {
    const feature = features?.getChild("licence", LICENCE_NS);
    if (!feature) return undefined; // nothing to prove to this server
    const offer = readOffer(feature);
    state.offer = offer;
    if (!streamId) throw new Error("licence: the server's stream header has no id");
    let bindingData: Buffer | undefined;
    if (offer.bindingType !== "none") {
      const socket = tlsSocketOf((entity as unknown as ConnectionInternals).socket?.socket);
      if (!socket) {
        throw new Error(
          `licence: ${offer.bindingType} offered, but this connection's TLS is not reachable (no TLS, or a WebSocket whose TLS the platform keeps)`,
        );
      }
      bindingData = channelBindingData(socket, offer.bindingType);
    }
    const input: ProofInput = {
      domain: entity.options.domain,
      streamId,
      nonce: offer.nonce,
      bindingType: offer.bindingType,
      ...(bindingData ? { bindingData } : {}),
      clientId: licence.clientId,
      version: licence.version,
      platform: licence.platform,
      keyId: licence.keyId,
    };
    const attrs = {
      xmlns: LICENCE_NS,
      "client-id": licence.clientId,
      version: licence.version,
      platform: licence.platform,
      "key-id": licence.keyId,
    };
    const held = signed ? undefined : tickets?.get();
    if (held && Date.now() < held.expiresAt - TICKET_MARGIN_MS) {
      const proof = xml("proof", { ...attrs, ticket: held.ticket }, ticketProof(input, held.secret));
      return { proof, offer, resumed: true };
    }
    return { proof: xml("proof", attrs, licenceProof({ ...input, privateKey })), offer, resumed: false };
  }

  /** Takes the server's licence <success/>: keeps the ticket it carries, records and announces it. */
  function accept(reply: Element, offer: LicenceOffer, resumed: boolean): void {
    const rec = reply.getChild("recommended", LICENCE_NS) ?? reply.getChild("recommended");
    const earned = reply.getChild("ticket", LICENCE_NS) ?? reply.getChild("ticket");
    const expiresAt = Date.parse(earned?.attrs.expires ?? "");
    if (tickets && earned?.attrs.secret && Number.isFinite(expiresAt)) {
      tickets.set({
        ticket: earned.text().trim(),
        secret: Buffer.from(earned.attrs.secret, "base64"),
        expiresAt,
      });
    }
    const accepted: LicenceAccepted = {
      offer,
      resumed,
      ...(rec?.attrs.version
        ? { recommended: { version: rec.attrs.version, ...(rec.attrs.url ? { url: rec.attrs.url } : {}) } }
        : {}),
    };
    state.accepted = accepted;
    entity.emit("licence", accepted);
  }

  /** The proof on its own, before SASL (protocol §2.2), when it did not ride inside SASL2. */
  async function prove(): Promise<void> {
    if (inline) return;
    const conn = entity as unknown as ConnectionInternals;
    const exchange = async (proof: Element): Promise<Element> => {
      try {
        return await conn.sendReceive(proof, conn.timeout);
      } catch (err) {
        throw licenceRefusal(err) ?? err;
      }
    };
    let made = makeProof(false);
    if (!made) return;
    let reply = await exchange(made.proof);
    if (made.resumed && reply.is("ticket-refused", LICENCE_NS)) {
      // Expired or issued under a replaced key: the same nonce takes one signed proof.
      tickets?.set(undefined);
      made = makeProof(true)!;
      reply = await exchange(made.proof);
    }
    if (reply.is("error", NS_STREAM)) {
      throw refusalFromStreamError(reply) ?? new Error(`licence: stream error ${reply.toString()}`);
    }
    if (!reply.is("success", LICENCE_NS)) {
      throw new Error(`licence: unexpected answer to the proof: ${reply.toString()}`);
    }
    accept(reply, made.offer, made.resumed);
  }

  const authenticateWithProof = async (
    authenticate: Authenticate,
    mechanisms: string[],
    ...more: unknown[]
  ) => {
    await prove();
    if (credentials) {
      await (credentials as (...args: unknown[]) => Promise<void>)(authenticate, mechanisms, ...more);
      return;
    }
    // As @xmpp/client does with a username and password: its preferred mechanism, no PLAIN without TLS.
    const mechanism = entity.isSecure() ? mechanisms[0] : mechanisms.find((m) => m !== "PLAIN");
    if (!mechanism) throw new Error("SASL: no usable mechanism offered");
    await authenticate(
      { username: clientOptions.username ?? "", password: clientOptions.password ?? "" },
      mechanism,
    );
  };

  const entity = client({ ...clientOptions, credentials: authenticateWithProof });

  // The proof inside SASL2's <authenticate/> (protocol §2.6) when the server lists it inline:
  // @xmpp/client asks for inline elements before it calls the credentials callback, and hands
  // back the licence <success/> found inside the SASL2 <success/>.
  (entity as unknown as Sasl2Internals).sasl2.use(
    LICENCE_NS,
    () => {
      const made = makeProof(false);
      if (!made) return undefined;
      inline = made;
      return made.proof;
    },
    (answer: Element) => {
      if (inline && answer.is("success", LICENCE_NS)) accept(answer, inline.offer, inline.resumed);
    },
  );

  entity.on("connecting", () => {
    inline = undefined;
    state.offer = undefined;
    state.accepted = undefined;
    state.refused = undefined;
    streamId = undefined;
    features = undefined;
  });
  // The server's stream header: the proof binds to its id (a new one after each restart).
  entity.on("open", (header: Element | undefined) => {
    streamId = header?.attrs.id;
  });
  // Ahead of the feature middleware, which runs the SASL step synchronously on the same event.
  entity.prependListener("element", (el: Element) => {
    if (el.is("features", NS_STREAM)) {
      features = el;
    } else if (el.is("failure", NS_SASL2) && el.getChild("ticket-refused", LICENCE_NS)) {
      // The ticket that rode inside <authenticate/> is no longer accepted: sign from now on.
      tickets?.set(undefined);
      ticketRefusedInline = true;
    } else if (el.is("error", NS_STREAM) || el.is("failure", NS_SASL2)) {
      const refused = el.is("failure", NS_SASL2) ? refusalFromSaslFailure(el) : refusalFromStreamError(el);
      // A SASL failure with the condition is followed by the stream error: one event.
      if (refused && !state.refused) {
        state.refused = refused;
        entity.reconnect.stop();
        entity.emit("licence-refused", refused);
      }
    }
  });

  const start = entity.start.bind(entity);
  entity.start = async () => {
    ticketRefusedInline = false;
    try {
      return await startOnline(entity, start);
    } catch (err) {
      const refusal = licenceRefusal(err);
      if (refusal || !ticketRefusedInline) throw refusal ?? err;
    }
    // A refused ticket fails a SASL2 attempt: once more, on a new connection, with a signature.
    entity.emit("licence-retry");
    await entity.stop().catch(() => undefined);
    try {
      return await startOnline(entity, start);
    } catch (err) {
      throw licenceRefusal(err) ?? err;
    }
  };

  return Object.assign(entity, { licence: state });
}
