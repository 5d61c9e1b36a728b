/**
 * A raw connection up to the licence step (STARTTLS, then the <licence/>
 * feature), for proofs no well-behaved client sends: replayed from another
 * stream, sent twice, signed with the wrong key.
 */
import { type BindingType, channelBindingData, LICENCE_NS, licenceProof } from "../../sdk/index.js";
import { type LicenceRefusedError, refusalFromStreamError } from "../../sdk/refusal.js";
import { RawConnection } from "./raw-client.js";
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
  nonce = "";
  bindingType: BindingType = "none";
  mode = "";

  private constructor(
    private readonly conn: RawConnection,
    readonly domain: string,
  ) {}

  /** TCP, STARTTLS, a new stream: stops at the pre-authentication features. */
  static async open(server: TestServer): Promise<ProofStream> {
    const conn = await RawConnection.connect({ host: server.host, port: server.c2sPort });
    const s = new ProofStream(conn, server.domain);
    await conn.openStream(server.domain);
    const features = await conn.startTls(server.domain);
    const licence = parseXml(
      features.replace("<stream:features>", "<features>").replace("</stream:features>", "</features>"),
    ).getChild("licence", LICENCE_NS);
    if (!licence) throw new Error(`no <licence/> feature after TLS: ${features}`);
    s.nonce = licence.getChildText("nonce") ?? "";
    s.mode = licence.attrs.mode ?? "";
    s.bindingType = (licence.getChild("channel-binding")?.attrs.type as BindingType | undefined) ?? "none";
    return s;
  }

  /** The id of the stream after TLS (proofs are signed for it). */
  get streamId(): string {
    return this.conn.streamId;
  }

  write(text: string): void {
    this.conn.write(text);
  }

  waitFor(re: RegExp, what: string): Promise<RegExpExecArray> {
    return this.conn.waitFor(re, what);
  }

  /** A correct proof for this stream, signed with `fields.privateKeyPem` (or another key). */
  proof(fields: ProofFields): string {
    const bindingData =
      this.bindingType === "none" ? undefined : channelBindingData(this.conn.tlsSocket!, this.bindingType);
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

  destroy(): void {
    this.conn.destroy();
  }
}
