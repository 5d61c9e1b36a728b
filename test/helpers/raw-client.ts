/**
 * A raw XMPP connection for tests that must send what no client library would
 * (ill-formed XML, DTDs, oversized stanzas, silence, hand-made licence proofs):
 * text in, text out, with just enough protocol (STARTTLS, SASL PLAIN, bind) to
 * get authenticated. The licensing tests build their clients on it.
 */
import net from "node:net";
import tls from "node:tls";
import { WAIT_MS } from "./inbox.js";
import type { TestServer } from "./server.js";
import { type Element, parseXml } from "./stanza.js";

export const STREAM_NS = "urn:ietf:params:xml:ns:xmpp-streams";

/** The client's stream header; `lang` "" leaves xml:lang out. */
export function streamHeader(domain: string, lang = "en"): string {
  return (
    `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0'${lang === "" ? "" : ` xml:lang='${lang}'`} ` +
    `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
  );
}

export class RawConnection {
  /** Everything received since the connection (or the TLS layer) started. */
  received = "";
  /** Position in `received` up to which waitFor has consumed. */
  private cursor = 0;
  /** The id of the server's latest stream header. */
  streamId = "";
  private closedFlag = false;
  private closedAt = 0;
  private readonly listeners = new Set<() => void>();

  private constructor(
    private socket: net.Socket,
    readonly label: string,
  ) {
    this.attach(socket);
  }

  static open(
    server: TestServer,
    opts: { directTls?: boolean; label?: string; localAddress?: string } = {},
  ): Promise<RawConnection> {
    return RawConnection.connect({
      host: server.host,
      port: opts.directTls ? server.c2sTlsPort : server.c2sPort,
      ...(opts.directTls ? { directTls: server.domain } : {}),
      ...(opts.label !== undefined ? { label: opts.label } : {}),
      ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
    });
  }

  /** Connects to host:port; `directTls` names the server for a TLS connection from the start. */
  static async connect(opts: {
    host: string;
    port: number;
    directTls?: string;
    label?: string;
    /** The client's own address (another loopback address plays another machine). */
    localAddress?: string;
    /** A certificate presented on direct TLS (a server authenticating with SASL EXTERNAL). */
    clientCertificate?: { cert: string; key: string };
  }): Promise<RawConnection> {
    const { host, port, directTls } = opts;
    const local = opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {};
    const socket =
      directTls !== undefined
        ? tls.connect({
            host,
            port,
            ...local,
            ...opts.clientCertificate,
            servername: directTls,
            rejectUnauthorized: false,
          })
        : net.connect({ host, port, ...local });
    await new Promise<void>((resolve, reject) => {
      socket.once(directTls !== undefined ? "secureConnect" : "connect", () => resolve());
      socket.once("error", reject);
    });
    return new RawConnection(socket, opts.label ?? `raw connection to port ${port}`);
  }

  /** The TLS socket once the connection is encrypted (for channel-binding data). */
  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
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
      this.closedAt = Date.now();
      this.notify();
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** When the server closed the connection (ms since epoch), or 0. */
  get closedTime(): number {
    return this.closedAt;
  }

  write(text: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  /** Stops reading from the socket: the server's writes pile up (a client that froze). */
  stopReading(): void {
    this.socket.pause();
  }

  /** Bytes handed to the socket that the kernel has not taken yet. */
  get unsentBytes(): number {
    return this.socket.writableLength;
  }

  /** Waits until the text after the cursor matches; moves the cursor past the match. */
  waitFor(re: RegExp, what: string, timeoutMs = WAIT_MS): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const rest = this.received.slice(this.cursor);
        const m = re.exec(rest);
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
              `${this.label}: connection closed while waiting for ${what}; received:\n${tail(this.received)}`,
            ),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${this.label}: timed out after ${timeoutMs / 1000} s waiting for ${what}; received:\n${tail(this.received)}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const listener = () => {
        check();
      };
      if (!check()) this.listeners.add(listener);
    });
  }

  /** Moves the cursor back over `length` characters just matched, so a later wait sees them again. */
  unread(length: number): void {
    this.cursor = Math.max(0, this.cursor - length);
  }

  /** Waits until the server has closed the connection. */
  waitClosed(what: string, timeoutMs = WAIT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closedFlag) return resolve();
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(
          new Error(
            `${this.label}: the server did not close the connection within ${timeoutMs / 1000} s (${what}); received:\n${tail(this.received)}`,
          ),
        );
      }, timeoutMs);
      const listener = () => {
        if (!this.closedFlag) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve();
      };
      this.listeners.add(listener);
    });
  }

  /**
   * Waits for a stream error and returns its condition (the element qualified by
   * the streams namespace), e.g. "not-well-formed".
   */
  async streamError(what: string, timeoutMs = WAIT_MS): Promise<string> {
    const m = await this.waitFor(
      /<stream:error[\s>][\s\S]*?<\/stream:error>/,
      `a stream error (${what})`,
      timeoutMs,
    );
    const cond = new RegExp(`<([a-z-]+)\\s[^>]*xmlns=["']${STREAM_NS}["']`, "g");
    for (const c of m[0].matchAll(cond)) if (c[1] !== "text") return c[1]!;
    throw new Error(`${this.label}: stream error without a defined condition: ${m[0]}`);
  }

  /** Waits for the <iq/> or <message/> with this id and parses it. */
  async stanzaWithId(name: "iq" | "message" | "presence", id: string, what: string): Promise<Element> {
    const re = new RegExp(`<${name}\\s[^>]*\\bid=["']${id}["'][^>]*?(?:/>|>[\\s\\S]*?</${name}>)`);
    const m = await this.waitFor(re, what);
    return parseXml(m[0]);
  }

  /** Sends a stream header and waits for the server's (keeping its stream id), then its features. */
  async openStream(domain: string, lang?: string): Promise<string> {
    this.write(streamHeader(domain, lang));
    const header = await this.waitFor(/<stream:stream\b[^>]*>/, "the stream header");
    this.streamId = /\bid=['"]([^'"]+)['"]/.exec(header[0])?.[1] ?? "";
    const m = await this.waitFor(
      /<stream:features\s*\/>|<stream:features[\s\S]*?<\/stream:features>/,
      "stream features",
    );
    return m[0];
  }

  /** STARTTLS on a plain connection, then a new stream; returns the features. */
  async startTls(domain: string, lang?: string): Promise<string> {
    await this.upgradeTls(domain);
    return this.openStream(domain, lang);
  }

  /** STARTTLS and the TLS handshake; the caller opens the new stream. */
  async upgradeTls(domain: string): Promise<void> {
    this.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.waitFor(/<proceed[^>]*\/>/, "<proceed/>");
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = tls.connect({ socket: plain, servername: domain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", () => resolve());
      secure.once("error", reject);
    });
    this.socket = secure;
    this.received = "";
    this.cursor = 0;
    this.attach(secure);
  }

  /**
   * STARTTLS (unless direct TLS) and one SASL PLAIN attempt: "success", or the failure's
   * condition and text. The stream stays open for another attempt.
   */
  async tryPlain(domain: string, user: string, password: string): Promise<{ outcome: string; text: string }> {
    if (this.streamId === "") {
      const first = await this.openStream(domain);
      if (/<starttls/.test(first)) await this.startTls(domain);
    }
    const creds = Buffer.from(`\0${user}\0${password}`).toString("base64");
    this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${creds}</auth>`);
    const m = await this.waitFor(
      /<success[^>]*(\/>|>[\s\S]*?<\/success>)|<failure[^>]*>([\s\S]*?)<\/failure>/,
      "the SASL outcome",
      20_000,
    );
    if (m[0].startsWith("<success")) return { outcome: "success", text: "" };
    const body = m[2] ?? "";
    const condition = /<([a-z-]+)[\s/>]/.exec(body)?.[1] ?? "?";
    const text = /<text[^>]*>([^<]*)<\/text>/.exec(body)?.[1] ?? "";
    return { outcome: condition, text };
  }

  /**
   * STARTTLS (unless direct TLS), SASL PLAIN, resource binding. Returns the bound JID.
   * `lang` is the xml:lang of the stream headers (default en).
   */
  async login(
    server: TestServer,
    user: string,
    password: string,
    resource: string,
    lang?: string,
  ): Promise<string> {
    const first = await this.openStream(server.domain, lang);
    if (/<starttls/.test(first)) await this.startTls(server.domain, lang);
    const creds = Buffer.from(`\0${user}\0${password}`).toString("base64");
    this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${creds}</auth>`);
    await this.waitFor(/<success[^>]*(\/>|>[\s\S]*?<\/success>)/, "SASL <success/>");
    await this.openStream(server.domain, lang);
    this.write(
      `<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
    );
    const m = await this.waitFor(/<jid>([^<]+)<\/jid>/, "the bound JID");
    return m[1]!;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function tail(s: string, n = 1500): string {
  const t = s.length > n ? "…" + s.slice(-n) : s;
  return t === "" ? "  (nothing)" : "  " + t;
}
