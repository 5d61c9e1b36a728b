/**
 * A scripted XMPP server for the SDK's tests: STARTTLS, the <licence/> stream
 * feature beside SASL PLAIN, resource binding, nothing else. It checks proofs
 * the way the protocol says (canonical string and channel binding computed
 * here, independently of the SDK) and records what the client sent, in order,
 * so the tests can check where the proof happens in the negotiation.
 */
import { createHash, type KeyObject, randomBytes, verify, X509Certificate } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { generate } from "selfsigned";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import { StreamParser } from "../../src/core/xml/parser.js";

export const LICENCE_NS = "urn:switchboard:client-licence:0";
const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";

export interface ReceivedProof {
  streamId: string;
  nonce: string;
  attrs: Record<string, string | undefined>;
  bindingType: string;
  /** The signature verified against the canonical string this server expected. */
  verified: boolean;
  /** The canonical string this server expected. */
  expected: string;
}

export interface FakeServerOptions {
  /** Public key that proofs are checked against. */
  publicKey: KeyObject;
  /** Highest TLS version (TLS 1.3: tls-exporter is offered; TLS 1.2: tls-server-end-point). */
  maxTls?: "TLSv1.2" | "TLSv1.3";
  /** Offer the <licence/> feature (default true). */
  offerLicence?: boolean;
  /** What to send after a proof (default: <success/>); a stream error closes the stream. */
  answer?: (proof: ReceivedProof) => string;
}

export interface FakeConnection {
  /** Top-level elements received, in order: "starttls", "proof", "auth", "iq", … */
  readonly received: string[];
  /** The decoded SASL PLAIN credentials. */
  authcid?: string;
  password?: string;
  /** Sends raw XML (e.g. a stream error) and, for a stream error, closes the stream. */
  send(text: string): void;
  readonly closed: Promise<void>;
}

interface Cert {
  certPem: string;
  keyPem: string;
  der: Buffer;
}

let certCache: Promise<Cert> | undefined;
function certificate(): Promise<Cert> {
  certCache ??= generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
  }).then((p) => ({
    certPem: p.cert,
    keyPem: p.private,
    der: Buffer.from(new X509Certificate(p.cert).raw),
  }));
  return certCache;
}

export class FakeLicensingServer {
  readonly domain = "localhost";
  readonly connections: FakeConnection[] = [];
  readonly proofs: ReceivedProof[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly opts: FakeServerOptions,
    private readonly cert: Cert,
    readonly port: number,
  ) {}

  static async start(opts: FakeServerOptions): Promise<FakeLicensingServer> {
    const cert = await certificate();
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const fake = new FakeLicensingServer(server, opts, cert, (server.address() as net.AddressInfo).port);
    server.on("connection", (s) => fake.accept(s));
    return fake;
  }

  get service(): string {
    return `xmpp://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(plain: net.Socket): void {
    this.sockets.add(plain);
    plain.on("close", () => this.sockets.delete(plain));
    plain.on("error", () => undefined);
    const received: string[] = [];
    let socket: net.Socket = plain;
    let phase: "pre-tls" | "pre-auth" | "post-auth" = "pre-tls";
    let streamId = "";
    let nonce = "";
    let bindingType = "none";
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => {
      resolveClosed = r;
    });
    plain.on("close", () => resolveClosed());
    const write = (text: string) => {
      if (!socket.destroyed) socket.write(text);
    };
    const conn: FakeConnection = {
      received,
      closed,
      send: (text) => {
        write(text);
        if (text.includes("stream:error")) {
          write("</stream:stream>");
          socket.end();
        }
      },
    };
    this.connections.push(conn);

    const features = (): string => {
      if (phase === "pre-tls") return `<starttls xmlns='${NS_TLS}'><required/></starttls>`;
      if (phase === "post-auth") return `<bind xmlns='${NS_BIND}'/>`;
      let licence = "";
      if (this.opts.offerLicence !== false) {
        nonce = randomBytes(32).toString("base64");
        const tlsSocket = socket as tls.TLSSocket;
        bindingType = tlsSocket.getProtocol() === "TLSv1.3" ? "tls-exporter" : "tls-server-end-point";
        licence =
          `<licence xmlns='${LICENCE_NS}' mode='warn' cutoff='2027-01-15T00:00:00Z'>` +
          `<nonce>${nonce}</nonce><channel-binding type='${bindingType}'/></licence>`;
      }
      return `${licence}<mechanisms xmlns='${NS_SASL}'><mechanism>PLAIN</mechanism></mechanisms>`;
    };

    const bindingData = (): Buffer =>
      bindingType === "tls-exporter"
        ? (socket as tls.TLSSocket).exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0))
        : createHash("sha256").update(this.cert.der).digest();

    const onProof = (el: XmlElement) => {
      const a = el.attrs;
      const expected = [
        "switchboard-client-licence:0",
        this.domain,
        streamId,
        nonce,
        a["client-id"],
        a.version,
        a.platform,
        a["key-id"],
        `${bindingType}:${bindingData().toString("base64")}`,
      ].join("\n");
      const verified = verify(
        null,
        Buffer.from(expected, "utf8"),
        this.opts.publicKey,
        Buffer.from(el.text(), "base64"),
      );
      const proof: ReceivedProof = { streamId, nonce, attrs: { ...a }, bindingType, verified, expected };
      this.proofs.push(proof);
      conn.send(
        this.opts.answer?.(proof) ??
          (verified
            ? `<success xmlns='${LICENCE_NS}'/>`
            : streamError("bad-proof", "the proof does not verify")),
      );
    };

    const onElement = (el: XmlElement) => {
      received.push(el.name);
      if (el.name === "starttls" && phase === "pre-tls") {
        write(`<proceed xmlns='${NS_TLS}'/>`);
        plain.removeAllListeners("data");
        const secure = new tls.TLSSocket(plain, {
          isServer: true,
          secureContext: tls.createSecureContext({
            cert: this.cert.certPem,
            key: this.cert.keyPem,
            maxVersion: this.opts.maxTls ?? "TLSv1.3",
          }),
        });
        secure.on("error", () => undefined);
        socket = secure;
        phase = "pre-auth";
        restart();
      } else if (el.name === "proof" && el.attrs.xmlns === LICENCE_NS) {
        onProof(el);
      } else if (el.name === "auth") {
        const [, user, pass] = Buffer.from(el.text(), "base64").toString("utf8").split("\0");
        conn.authcid = user;
        conn.password = pass;
        write(`<success xmlns='${NS_SASL}'/>`);
        phase = "post-auth";
        restart();
      } else if (el.name === "iq" && el.getChild("bind", NS_BIND)) {
        const resource = el.getChild("bind", NS_BIND)?.getChildText("resource") || "sdk";
        write(
          x(
            "iq",
            { type: "result", id: el.attrs.id },
            x("bind", { xmlns: NS_BIND }, x("jid", {}, `${conn.authcid}@${this.domain}/${resource}`)),
          ).toString(),
        );
      } else if (el.name === "iq" && (el.attrs.type === "get" || el.attrs.type === "set")) {
        write(x("iq", { type: "result", id: el.attrs.id }).toString());
      }
    };

    const restart = () => {
      const parser = new StreamParser(
        {
          streamStart: () => {
            streamId = randomBytes(8).toString("hex");
            write(
              `<?xml version='1.0'?><stream:stream xmlns='jabber:client' ` +
                `xmlns:stream='http://etherx.jabber.org/streams' id='${streamId}' from='${this.domain}' ` +
                `version='1.0'><stream:features>${features()}</stream:features>`,
            );
          },
          element: onElement,
          streamEnd: () => {
            write("</stream:stream>");
            socket.end();
          },
          error: () => socket.destroy(),
        },
        { maxStanzaBytes: 65536, maxDepth: 32 },
      );
      socket.removeAllListeners("data");
      socket.on("data", (d: Buffer) => parser.write(d));
    };
    restart();
  }
}

/** A licence refusal as the protocol writes it. */
export function streamError(condition: string, text: string, attrs: Record<string, string> = {}): string {
  const extra = Object.entries(attrs)
    .map(([k, v]) => ` ${k}='${v}'`)
    .join("");
  return (
    `<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
    `<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>${text}</text>` +
    `<${condition} xmlns='${LICENCE_NS}'${extra}/></stream:error>`
  );
}
