/**
 * A raw XMPP client over a real socket for the licensing tests: stream headers,
 * STARTTLS, the licence feature and proof (with the TLS exporter when the stream
 * has TLS 1.3), SASL PLAIN, binding, and stream errors read back as data.
 */
import { createPrivateKey, sign } from "node:crypto";
import { channelBindingData, isBindingType } from "../../sdk/binding.js";
import { NS_LICENCE, proofSignedBytes } from "../../src/licensing/index.js";
import { RawConnection } from "../helpers/raw-client.js";
import { type Element, parseXml } from "../helpers/stanza.js";
import { type LicensingHarness, registerApp, startLicensing, type TestApp } from "./b-kit.js";

const WAIT_MS = 5000;
const NS_SASL2 = "urn:xmpp:sasl:2";

export interface StreamErrorInfo {
  condition: string | undefined;
  text: string | undefined;
  /** The licence condition element, when there is one. */
  licence: Element | undefined;
}

export class SocketClient {
  /** The id of the current stream (from the server's header); proofs are signed for it. */
  streamId = "";
  features: Element | undefined;

  private constructor(private readonly conn: RawConnection) {}

  static async connect(port: number): Promise<SocketClient> {
    return new SocketClient(await RawConnection.connect({ host: "127.0.0.1", port }));
  }

  /** Everything received on the current (TLS or plain) layer. */
  get received(): string {
    return this.conn.received;
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  write(text: string): void {
    this.conn.write(text);
  }

  waitFor(re: RegExp, what: string, ms = WAIT_MS): Promise<RegExpExecArray> {
    return this.conn.waitFor(re, what, ms);
  }

  /** Opens a stream; keeps the stream id and the features. */
  async open(domain: string): Promise<Element> {
    this.features = parseXml(await this.conn.openStream(domain));
    this.streamId = this.conn.streamId;
    return this.features;
  }

  async startTls(domain: string): Promise<Element> {
    await this.conn.upgradeTls(domain);
    return this.open(domain);
  }

  /** The channel-binding data of this connection for a type the server offered. */
  bindingData(type: string | undefined): Buffer | undefined {
    const s = this.conn.tlsSocket;
    if (type === undefined || !s || !isBindingType(type)) return undefined;
    return channelBindingData(s, type);
  }

  /** The licence feature of the current stream. */
  licenceFeature(): Element {
    const f = this.features?.getChild("licence", NS_LICENCE);
    if (!f) throw new Error(`no licence feature in ${this.features?.toString()}`);
    return f;
  }

  /** Signs and sends a proof for the current stream's nonce. */
  /**
   * Signs and sends a proof for the current stream's nonce, bound to the first binding type
   * offered, or to `opts.bindingType` (named in the proof's channel-binding attribute).
   */
  sendProof(domain: string, claim: LicenceCredentials, opts: { bindingType?: string } = {}): void {
    this.write(this.proofText(domain, claim, opts));
  }

  /** A signed <proof/> for the current stream's nonce, as text. */
  proofText(domain: string, claim: LicenceCredentials, opts: { bindingType?: string } = {}): string {
    const f = this.licenceFeature();
    const bindingType = opts.bindingType ?? (f.getChild("channel-binding")?.attrs.type as string | undefined);
    const ctx = {
      domain,
      streamId: this.streamId,
      nonce: f.getChildText("nonce") ?? "",
      bindingType,
      bindingData: this.bindingData(bindingType),
    };
    const signature = sign(null, proofSignedBytes(ctx, claim), createPrivateKey(claim.privateKeyPem));
    return (
      `<proof xmlns='${NS_LICENCE}' client-id='${claim.clientId}' version='${claim.version}' ` +
      `platform='${claim.platform}' key-id='${claim.keyId}'` +
      `${opts.bindingType ? ` channel-binding='${opts.bindingType}'` : ""}>${signature.toString("base64")}</proof>`
    );
  }

  /**
   * XEP-0388 SASL2 with PLAIN: `inline` (e.g. a proof) and a user-agent ride inside
   * <authenticate/>. Resolves the SASL2 <success/> or <failure/>, or "stream-error".
   */
  async authenticate2(
    user: string,
    password: string,
    opts: { inline?: string; software?: string } = {},
  ): Promise<Element | "stream-error"> {
    const agent = opts.software
      ? `<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>${opts.software}</software><device>test rig</device></user-agent>`
      : "";
    this.write(
      `<authenticate xmlns='${NS_SASL2}' mechanism='PLAIN'><initial-response>` +
        `${Buffer.from(`\0${user}\0${password}`).toString("base64")}</initial-response>${agent}${opts.inline ?? ""}</authenticate>`,
    );
    // A SASL2 <success/> may hold a licence <success/>; the post-authentication features
    // always follow it, which tells its own end tag from the inner one.
    const m = await this.waitFor(
      /<success xmlns="urn:xmpp:sasl:2"[\s\S]*?<\/success>(?=<stream:features)|<failure xmlns="urn:xmpp:sasl:2"[\s\S]*?<\/failure>|<stream:error>/,
      "the SASL2 outcome",
    );
    if (m[0].startsWith("<stream:error")) {
      this.conn.unread(m[0].length);
      return "stream-error";
    }
    return parseXml(m[0]);
  }

  /** Binds a resource on the current stream (after SASL2: no restart). */
  async bindHere(resource: string): Promise<string> {
    this.write(
      `<iq type='set' id='bind2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
    );
    return (await this.waitFor(/<jid>([^<]+)<\/jid>/, "the bound JID"))[1]!;
  }

  /** Waits for the answer to a proof: the <success/> element, or throws with the stream error. */
  async proofAnswer(): Promise<Element> {
    const m = await this.waitFor(
      /<success xmlns="urn:switchboard:client-licence:0"[\s\S]*?(?:\/>|<\/success>)|<stream:error>[\s\S]*?<\/stream:error>/,
      "the answer to the proof",
    );
    const el = parseXml(m[0]);
    if (el.name !== "success") throw new Error(`proof refused: ${m[0]}`);
    return el;
  }

  /** SASL PLAIN; resolves "success", or "stream-error" when the server closes the stream instead. */
  async auth(user: string, password: string): Promise<"success" | "failure" | "stream-error"> {
    this.write(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString("base64")}</auth>`,
    );
    const m = await this.waitFor(
      /<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"[\s\S]*?(?:\/>|<\/success>)|<failure[\s\S]*?<\/failure>|<stream:error>/,
      "the SASL outcome",
    );
    if (m[0].startsWith("<stream:error")) {
      this.conn.unread(m[0].length);
      return "stream-error";
    }
    if (m[0].startsWith("<success")) return "success";
    this.lastFailure = parseXml(m[0]);
    return "failure";
  }

  /** The last RFC 6120 SASL <failure/> auth() read. */
  lastFailure: Element | undefined;

  async bind(domain: string, resource: string): Promise<string> {
    await this.open(domain);
    this.write(
      `<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
    );
    return (await this.waitFor(/<jid>([^<]+)<\/jid>/, "the bound JID"))[1]!;
  }

  async streamError(ms = WAIT_MS): Promise<StreamErrorInfo> {
    const m = await this.waitFor(/<stream:error>[\s\S]*?<\/stream:error>/, "a stream error", ms);
    const el = parseXml(m[0]);
    const children = el.getChildElements();
    return {
      condition: children.find(
        (c) => c.attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-streams" && c.name !== "text",
      )?.name,
      text: el.getChildText("text") ?? undefined,
      licence: children.find((c) => c.attrs.xmlns === NS_LICENCE),
    };
  }

  destroy(): void {
    this.conn.destroy();
  }
}

export interface LicenceCredentials {
  clientId: string;
  version: string;
  platform: string;
  keyId: string;
  privateKeyPem: string;
}

/**
 * A whole login over a socket: stream, STARTTLS when `tls`, the proof when `licence` is
 * given, SASL PLAIN, binding. Throws when the server refuses (the message has the error).
 */
export async function socketLogin(opts: {
  port: number;
  domain: string;
  user: string;
  password: string;
  tls?: boolean;
  licence?: LicenceCredentials;
  resource?: string;
}): Promise<SocketClient> {
  const c = await SocketClient.connect(opts.port);
  await c.open(opts.domain);
  if (opts.tls) await c.startTls(opts.domain);
  if (opts.licence) {
    c.sendProof(opts.domain, opts.licence);
    await c.proofAnswer();
  }
  const outcome = await c.auth(opts.user, opts.password);
  if (outcome !== "success") {
    let err = `SASL failure ${c.lastFailure?.getChildElements()[0]?.name ?? ""}`;
    // A licence refusal closes the stream with its condition, after a SASL failure or not.
    const e = await c.streamError(outcome === "stream-error" ? undefined : 1000).catch(() => undefined);
    if (e) err += `; ${e.condition} ${e.licence?.name ?? ""}: ${e.text ?? ""}`;
    c.destroy();
    throw new Error(`login refused: ${err}`);
  }
  await c.bind(opts.domain, opts.resource ?? "socket");
  return c;
}

/**
 * An in-process licensing server listening on loopback, with these accounts and one
 * registered app; pushed onto `harnesses` for the test file to stop.
 */
export async function startSocketServer(
  harnesses: LicensingHarness[],
  users: Record<string, string>,
  config: Record<string, unknown> = {},
): Promise<{ h: LicensingHarness; port: number; t: TestApp }> {
  const h = await startLicensing({}, { listen: true, config });
  harnesses.push(h);
  for (const [user, password] of Object.entries(users)) await h.createUser(user, password);
  const t = await registerApp(h.registry);
  await h.api.recheck();
  return { h, port: h.server.addresses.c2sPort!, t };
}

/** The proof credentials of the test app at a version. */
export function licenceOf(t: TestApp, version = "5.0.1"): LicenceCredentials {
  return {
    clientId: t.app.clientId,
    version,
    platform: "linux",
    keyId: t.keyId,
    privateKeyPem: t.privateKeyPem,
  };
}
