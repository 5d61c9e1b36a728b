/**
 * @xmpp/client, the JavaScript XMPP client, as a test peer: STARTTLS (or
 * direct TLS) and one forced SASL mechanism, then everything received goes to
 * the peer's inboxes. No automatic reconnection.
 */
import { type Client, client } from "@xmpp/client";
import { startOnline } from "../../sdk/start-online.js";
import { BasePeer } from "./peer.js";
import type { TestServer } from "./server.js";
import { type Element, NS } from "./stanza.js";

// The test server's certificate is self-signed, generated at its first start.
// @xmpp/client's STARTTLS takes no TLS options, so certificate checks are
// turned off for this test process only (each test file is its own process).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

export interface JsLogin {
  user: string;
  password: string;
  /** The served domain to log in to (default: the server's primary domain). */
  domain?: string;
  resource?: string;
  /** XEP-0368 direct TLS on the c2s-tls port instead of STARTTLS on the c2s port. */
  directTls?: boolean;
  /** The only SASL mechanism to use; @xmpp/client implements SCRAM-SHA-1 and PLAIN. */
  mechanism?: "SCRAM-SHA-1" | "PLAIN";
}

export class JsPeer extends BasePeer {
  /** Stream features received, in order (the last one is after authentication). */
  readonly features: Element[] = [];
  /** The SASL mechanisms the server offered (that @xmpp/client supports). */
  offeredMechanisms: string[] = [];
  readonly errors: Error[] = [];
  /** Which SASL profile the login used: XEP-0388 SASL2 or RFC 6120 SASL (from the server's <success/>). */
  saslProfile: "sasl2" | "rfc6120" | undefined;

  constructor(
    readonly xmpp: Client,
    label: string,
  ) {
    super(label);
    xmpp.reconnect.stop();
    xmpp.on("error", (err: Error) => {
      this.errors.push(err);
    });
    xmpp.on("stanza", (el: Element) => this.stanzas.push(el));
    xmpp.on("element", (el: Element) => {
      if (el.is("error", "http://etherx.jabber.org/streams")) {
        const cond = el.getChildElements().find((c) => c.getNS() === NS.streams && c.name !== "text");
        this.streamErrors.push(cond?.name ?? "(no condition)");
      } else if (el.is("features", "http://etherx.jabber.org/streams")) {
        this.features.push(el);
      } else if (el.is("success", "urn:xmpp:sasl:2")) {
        this.saslProfile = "sasl2";
      } else if (el.is("success", "urn:ietf:params:xml:ns:xmpp-sasl")) {
        this.saslProfile = "rfc6120";
      }
    });
    xmpp.on("disconnect", () => this.markEnded("disconnected"));
    xmpp.on("offline", () => this.markEnded("offline"));
    // A well-behaved client acknowledges roster and blocklist pushes (RFC 6121 §2.1.6, XEP-0191).
    xmpp.iqCallee.set(NS.roster, "query", () => true);
    xmpp.iqCallee.set(NS.blocking, "block", () => true);
    xmpp.iqCallee.set(NS.blocking, "unblock", () => true);
  }

  get secure(): boolean {
    return this.xmpp.isSecure();
  }

  async send(stanza: Element): Promise<void> {
    await this.xmpp.send(stanza);
  }

  /** Writes text to the stream as is, past @xmpp/client's checks (e.g. a malformed address). */
  async sendRaw(text: string): Promise<void> {
    await this.xmpp.write(text);
  }

  async close(): Promise<void> {
    if (this.xmpp.status === "offline" || this.xmpp.status === "disconnect") return;
    try {
      await this.xmpp.stop();
    } catch {
      // already closed by the server
    }
    await this.ended;
  }
}

function makeClient(server: TestServer, login: JsLogin, onOffer: (m: string[]) => void): Client {
  const mechanism = login.mechanism ?? "SCRAM-SHA-1";
  const service = login.directTls
    ? `xmpps://${server.host}:${server.c2sTlsPort}`
    : `xmpp://${server.host}:${server.c2sPort}`;
  return client({
    service,
    domain: login.domain ?? server.domain,
    ...(login.resource !== undefined ? { resource: login.resource } : {}),
    timeout: 10_000,
    credentials: async (authenticate, mechanisms) => {
      onOffer(mechanisms);
      if (!mechanisms.includes(mechanism)) {
        throw new Error(`the server did not offer ${mechanism} (offered: ${mechanisms.join(", ")})`);
      }
      await authenticate({ username: login.user, password: login.password }, mechanism);
    },
  });
}

function label(login: JsLogin): string {
  return `${login.user}/${login.resource ?? "?"} (@xmpp/client${login.directTls ? ", direct TLS" : ""})`;
}

/** Logs in; rejects with a message naming what failed. */
export async function connectJs(server: TestServer, login: JsLogin): Promise<JsPeer> {
  let offered: string[] = [];
  const xmpp = makeClient(server, login, (m) => {
    offered = m;
  });
  const peer = new JsPeer(xmpp, label(login));
  try {
    const jid = await withTimeout(startOnline(xmpp), 20_000, `${peer.label}: login`);
    peer.jid = jid.toString();
  } catch (err) {
    await xmpp.stop().catch(() => undefined);
    throw new Error(`${peer.label}: login failed: ${(err as Error).message}`);
  }
  peer.mechanism = login.mechanism ?? "SCRAM-SHA-1";
  peer.offeredMechanisms = offered;
  return peer;
}

/** Attempts a login that must fail; returns the SASL failure condition (e.g. "not-authorized"). */
export async function jsLoginFailure(server: TestServer, login: JsLogin): Promise<string> {
  const xmpp = makeClient(server, login, () => undefined);
  xmpp.reconnect.stop();
  const errors: Error[] = [];
  xmpp.on("error", (err: Error) => errors.push(err));
  try {
    await withTimeout(startOnline(xmpp), 20_000, "login attempt");
  } catch (err) {
    await xmpp.stop().catch(() => undefined);
    const e = err as Error & { condition?: string; name: string };
    if (e.name === "SASLError" && e.condition) return e.condition;
    throw new Error(`expected a SASL failure, got ${e.name}: ${e.message}`);
  }
  await xmpp.stop().catch(() => undefined);
  throw new Error(`login as ${login.user} succeeded, expected a SASL failure`);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]);
}
