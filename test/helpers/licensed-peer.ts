/**
 * Test peers for licensed access: the SDK client (sdk/licensed-client.ts) as a
 * Peer, and logins that must be refused, with what the refusal said, for the
 * SDK client, plain @xmpp/client and slixmpp.
 */
import { spawn } from "node:child_process";
import { type Client, client, type Element } from "@xmpp/client";
import { type LicensedClient, licensedClient, type TicketStore } from "../../sdk/licensed-client.js";
import { LICENCE_NS } from "../../sdk/proof.js";
import { type LicenceRefusedError, licenceRefusal } from "../../sdk/refusal.js";
import { startOnline } from "../../sdk/start-online.js";
import { Inbox } from "./inbox.js";
import { type JsLogin, JsPeer } from "./js-client.js";
import { BasePeer } from "./peer.js";
import type { TestServer } from "./server.js";
import { DRIVER, PYTHON, type SlixLogin, SlixPeer } from "./slix-client.js";
import { NS } from "./stanza.js";

// The test server's certificate is self-signed (this test process only).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

const LOGIN_TIMEOUT_MS = 20_000;

/** The build of an app that logs in: its licence credentials and version. */
export interface Build {
  clientId: string;
  keyId: string;
  privateKeyPem: string;
  version: string;
  platform?: string;
  /** Where the SDK keeps its licence ticket (default: its own memory; false: none). */
  tickets?: TicketStore | false;
}

export class LicensedPeer extends BasePeer {
  /** Licence refusals received (at login or on the live session), in order. */
  readonly refusals: Inbox<LicenceRefusedError>;
  /** The <proof/> elements this client sent. */
  readonly proofs: Element[] = [];
  readonly errors: Error[] = [];
  /** When the connection ended (ms since the epoch), 0 while it is open. */
  endedAt = 0;

  constructor(
    readonly xmpp: LicensedClient,
    label: string,
  ) {
    super(label);
    this.refusals = new Inbox<LicenceRefusedError>(
      label,
      (r) => `${r.condition} ${JSON.stringify(r.details)}`,
    );
    xmpp.reconnect.stop();
    xmpp.on("error", (err: Error) => this.errors.push(err));
    xmpp.on("stanza", (el: Element) => this.stanzas.push(el));
    xmpp.on("send", (el: Element) => {
      if (el.name === "proof") this.proofs.push(el);
      // The proof inside SASL2's <authenticate/> (protocol §2.6).
      if (el.name === "authenticate") this.proofs.push(...el.getChildren("proof", LICENCE_NS));
    });
    xmpp.on("element", (el: Element) => {
      if (!el.is("error", "http://etherx.jabber.org/streams")) return;
      const cond = el.getChildElements().find((c) => c.getNS() === NS.streams && c.name !== "text");
      this.streamErrors.push(cond?.name ?? "(no condition)");
    });
    xmpp.on("licence-refused", (r: LicenceRefusedError) => this.refusals.push(r));
    // The connection the SDK closes to sign again after a refused ticket is not the session's end.
    let retrying = false;
    xmpp.on("licence-retry", () => {
      retrying = true;
    });
    xmpp.on("connecting", () => {
      retrying = false;
    });
    const ended = (why: string) => {
      if (retrying) return;
      this.endedAt ||= Date.now();
      this.markEnded(why);
    };
    xmpp.on("disconnect", () => ended("disconnected"));
    xmpp.on("offline", () => ended("offline"));
    xmpp.iqCallee.set(NS.roster, "query", () => true);
  }

  async send(stanza: Element): Promise<void> {
    await this.xmpp.send(stanza);
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

  /** Waits for the server to close this session with a licence refusal; returns it. */
  async refused(what: string, timeoutMs = 5_000): Promise<LicenceRefusedError> {
    const r = await this.refusals.next(() => true, `a licence refusal (${what})`, timeoutMs);
    await Promise.race([this.ended, new Promise((res) => setTimeout(res, 2_000))]);
    return r;
  }
}

function makeLicensed(server: TestServer, login: JsLogin, build: Build): LicensedClient {
  return licensedClient({
    service: login.directTls
      ? `xmpps://${server.host}:${server.c2sTlsPort}`
      : `xmpp://${server.host}:${server.c2sPort}`,
    domain: server.domain,
    username: login.user,
    password: login.password,
    ...(login.resource !== undefined ? { resource: login.resource } : {}),
    timeout: 10_000,
    licence: {
      clientId: build.clientId,
      keyId: build.keyId,
      version: build.version,
      platform: build.platform ?? "linux",
      privateKeyPem: build.privateKeyPem,
      ...(build.tickets !== undefined ? { tickets: build.tickets } : {}),
    },
  });
}

function label(login: JsLogin, build: Build): string {
  return `${login.user}/${login.resource ?? "?"} (SDK ${build.clientId} ${build.version})`;
}

/** Logs in with the SDK client; rejects with what failed. */
export async function connectLicensed(
  server: TestServer,
  login: JsLogin,
  build: Build,
): Promise<LicensedPeer> {
  const xmpp = makeLicensed(server, login, build);
  const peer = new LicensedPeer(xmpp, label(login, build));
  try {
    const jid = await withTimeout(startOnline(xmpp), LOGIN_TIMEOUT_MS, `${peer.label}: login`);
    peer.jid = jid.toString();
  } catch (err) {
    await xmpp.stop().catch(() => undefined);
    throw new Error(`${peer.label}: login failed: ${(err as Error).message}`);
  }
  return peer;
}

/** An SDK login that must be refused: the LicenceRefusedError start() rejected with. */
export async function licensedRefusal(
  server: TestServer,
  login: JsLogin,
  build: Build,
): Promise<LicenceRefusedError> {
  const xmpp = makeLicensed(server, login, build);
  xmpp.reconnect.stop();
  xmpp.on("error", () => undefined);
  try {
    await withTimeout(startOnline(xmpp), LOGIN_TIMEOUT_MS, "login attempt");
  } catch (err) {
    await xmpp.stop().catch(() => undefined);
    const r = licenceRefusal(err);
    if (r) return r;
    throw new Error(`${label(login, build)}: expected a licence refusal, got ${(err as Error).message}`);
  }
  await xmpp.stop().catch(() => undefined);
  throw new Error(`${label(login, build)}: login succeeded, expected a licence refusal`);
}

function plainClient(server: TestServer, login: JsLogin): Client {
  return client({
    service: `xmpp://${server.host}:${server.c2sPort}`,
    domain: server.domain,
    ...(login.resource !== undefined ? { resource: login.resource } : {}),
    timeout: 10_000,
    credentials: async (authenticate, mechanisms) => {
      await authenticate({ username: login.user, password: login.password }, mechanisms[0]!);
    },
  });
}

/**
 * A plain @xmpp/client login (no proof) that must be refused with a licence
 * condition: returns the refusal (stream condition, licence condition, text).
 */
export async function plainRefusal(server: TestServer, login: JsLogin): Promise<LicenceRefusedError> {
  const xmpp = plainClient(server, login);
  xmpp.reconnect.stop();
  xmpp.on("error", () => undefined);
  try {
    await withTimeout(startOnline(xmpp), LOGIN_TIMEOUT_MS, "login attempt");
  } catch (err) {
    await xmpp.stop().catch(() => undefined);
    const r = licenceRefusal(err);
    if (r) return r;
    const e = err as Error & { condition?: string };
    throw new Error(
      `${login.user} (@xmpp/client): expected a licence refusal, got ${e.name} ${e.condition ?? ""}: ${e.message}`,
    );
  }
  await xmpp.stop().catch(() => undefined);
  throw new Error(`${login.user} (@xmpp/client): login succeeded, expected a licence refusal`);
}

/** A plain @xmpp/client session whose end (and stream error) the test watches. */
export async function connectPlain(server: TestServer, login: JsLogin): Promise<PlainPeer> {
  const xmpp = plainClient(server, login);
  const peer = new PlainPeer(xmpp, `${login.user}/${login.resource ?? "?"} (@xmpp/client)`);
  try {
    const jid = await withTimeout(startOnline(xmpp), LOGIN_TIMEOUT_MS, `${peer.label}: login`);
    peer.jid = jid.toString();
  } catch (err) {
    await xmpp.stop().catch(() => undefined);
    throw new Error(`${peer.label}: login failed: ${(err as Error).message}`);
  }
  return peer;
}

/** JsPeer plus the licence refusal that ended it, if any, and when it ended. */
export class PlainPeer extends JsPeer {
  refusal: LicenceRefusedError | undefined;
  endedAt = 0;

  constructor(xmpp: Client, label: string) {
    super(xmpp, label);
    xmpp.on("element", (el: Element) => {
      if (el.is("error", "http://etherx.jabber.org/streams"))
        this.refusal ??= licenceRefusal({ element: el });
    });
    const stamp = () => {
      this.endedAt ||= Date.now();
    };
    xmpp.on("disconnect", stamp);
    xmpp.on("offline", stamp);
  }
}

/** How a slixmpp login ended: a session, or the stream error conditions it got. */
export interface SlixOutcome {
  sessionStarted: boolean;
  streamErrors: string[];
  /** SASL failures, with the server's text. */
  authFailures: { condition: string; text: string }[];
  event: string;
}

/** Runs a slixmpp login to its end (session start, or a refusal and the disconnection); for logins that must be refused. */
export async function slixOutcome(server: TestServer, login: SlixLogin): Promise<SlixOutcome> {
  const args = [
    DRIVER,
    "--jid",
    `${login.user}@${server.domain}/${login.resource}`,
    "--password",
    login.password,
    "--host",
    server.host,
    "--port",
    String(server.c2sPort),
    "--mech",
    login.mechanism ?? "SCRAM-SHA-256",
  ];
  const proc = spawn(PYTHON, args, {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  const peer = new SlixPeer(
    proc,
    `${login.user}/${login.resource} (slixmpp)`,
    server.logFile.replace(/\.log$/, ".slixmpp.log"),
  );
  const outcome = await peer.loginOutcome(LOGIN_TIMEOUT_MS);
  // A refusal may come in parts (a SASL failure, then a stream error): wait for the end.
  if (outcome.event !== "session_start") {
    await Promise.race([peer.ended, new Promise((r) => setTimeout(r, LOGIN_TIMEOUT_MS))]);
  }
  peer.kill();
  return {
    sessionStarted: outcome.event === "session_start",
    streamErrors: peer.streamErrors.all(),
    authFailures: [...peer.authFailures],
    event: outcome.event,
  };
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]);
}
