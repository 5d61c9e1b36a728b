/**
 * A raw connection up to the licence step (STARTTLS, then the <licence/>
 * feature), for proofs no well-behaved client sends: replayed from another
 * stream, sent twice, signed with the wrong key.
 */
import net from "node:net";
import tls from "node:tls";
import { type BindingType, channelBindingData, LICENCE_NS, licenceProof } from "../../sdk/index.js";
import { type LicenceRefusedError, refusalFromStreamError } from "../../sdk/refusal.js";
import { WAIT_MS } from "./inbox.js";
import { streamHeader } from "./raw-client.js";
import type { TestServer } from "./server.js";
import { parseXml } from "./stanza.js";

export interface ProofFields {
  clientId: string;
  keyId: string;
  version: string;
  platform?: string;
  privateKeyPem: string;
}

export class ProofStream {
  private received = "";
  private cursor = 0;
  private closedFlag = false;
  private readonly listeners = new Set<() => void>();
  streamId = "";
  nonce = "";
  bindingType: BindingType = "none";
  mode = "";

  private constructor(
    private socket: net.Socket,
    readonly domain: string,
  ) {}

  /** TCP, STARTTLS, a new stream: stops at the pre-authentication features. */
  static async open(server: TestServer): Promise<ProofStream> {
    const plain = net.connect({ host: server.host, port: server.c2sPort });
    await new Promise<void>((resolve, reject) => {
      plain.once("connect", resolve);
      plain.once("error", reject);
    });
    const s = new ProofStream(plain, server.domain);
    s.attach(plain);
    s.write(streamHeader(server.domain));
    await s.waitFor(/<\/stream:features>/, "the first features");
    s.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await s.waitFor(/<proceed[^>]*\/>/, "<proceed/>");
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = tls.connect({ socket: plain, servername: server.domain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    s.socket = secure;
    s.received = "";
    s.cursor = 0;
    s.attach(secure);
    s.write(streamHeader(server.domain));
    const header = await s.waitFor(/<stream:stream\b[^>]*>/, "the stream header after TLS");
    s.streamId = /\bid=['"]([^'"]+)['"]/.exec(header[0])?.[1] ?? "";
    const features = await s.waitFor(/<stream:features>[\s\S]*?<\/stream:features>/, "features after TLS");
    const licence = parseXml(
      features[0].replace("<stream:features>", "<features>").replace("</stream:features>", "</features>"),
    ).getChild("licence", LICENCE_NS);
    if (!licence) throw new Error(`no <licence/> feature after TLS: ${features[0]}`);
    s.nonce = licence.getChildText("nonce") ?? "";
    s.mode = licence.attrs.mode ?? "";
    s.bindingType = (licence.getChild("channel-binding")?.attrs.type as BindingType | undefined) ?? "none";
    return s;
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.received += d;
      this.notify();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closedFlag = true;
      this.notify();
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  write(text: string): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  /** A correct proof for this stream, signed with `fields.privateKeyPem` (or another key). */
  proof(fields: ProofFields): string {
    const bindingData =
      this.bindingType === "none"
        ? undefined
        : channelBindingData(this.socket as tls.TLSSocket, this.bindingType);
    const signature = licenceProof({
      domain: this.domain,
      streamId: this.streamId,
      nonce: this.nonce,
      bindingType: this.bindingType,
      ...(bindingData ? { bindingData } : {}),
      clientId: fields.clientId,
      version: fields.version,
      platform: fields.platform ?? "linux",
      keyId: fields.keyId,
      privateKey: fields.privateKeyPem,
    });
    return (
      `<proof xmlns='${LICENCE_NS}' client-id='${fields.clientId}' version='${fields.version}' ` +
      `platform='${fields.platform ?? "linux"}' key-id='${fields.keyId}'>${signature}</proof>`
    );
  }

  /** Waits for <success/>; fails with what came instead. */
  async success(): Promise<void> {
    await this.waitFor(
      /<success\s[^>]*urn:switchboard:client-licence:0[^>]*?(\/>|>[\s\S]*?<\/success>)/,
      "<success/>",
    );
  }

  /** Waits for the refusal stream error and reads it. */
  async refusal(): Promise<LicenceRefusedError> {
    const m = await this.waitFor(/<stream:error>[\s\S]*?<\/stream:error>/, "a refusal stream error");
    const el = parseXml(
      m[0]
        .replace("<stream:error>", "<error xmlns='http://etherx.jabber.org/streams'>")
        .replace("</stream:error>", "</error>"),
    );
    const r = refusalFromStreamError(el);
    if (!r) throw new Error(`a stream error without a licence condition: ${m[0]}`);
    return r;
  }

  waitFor(re: RegExp, what: string, timeoutMs = WAIT_MS): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = re.exec(this.received.slice(this.cursor));
        if (m) {
          this.cursor += m.index + m[0].length;
          done();
          resolve(m);
          return true;
        }
        if (this.closedFlag) {
          done();
          reject(
            new Error(
              `connection closed while waiting for ${what}; received:\n${this.received.slice(-1500)}`,
            ),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`no ${what} within ${timeoutMs / 1000} s; received:\n${this.received.slice(-1500)}`),
        );
      }, timeoutMs);
      const listener = () => {
        check();
      };
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      if (!check()) this.listeners.add(listener);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
