/**
 * One benchmark client connection over plain TCP, STARTTLS, direct TLS (XEP-0368) or WebSocket
 * (RFC 7395, with the `ws` package): stream open, SASL SCRAM-SHA-1, stream restart,
 * resource bind, initial presence, then a ping round trip as a barrier (the server handles a
 * stream's stanzas in order, so its answer proves the presence was processed). After that it
 * sends whatever it is given and reports each received <message/>.
 */
import net from "node:net";
import tls from "node:tls";
import { WebSocket } from "ws";
import { isLicenceSuccess, type LicenceProver } from "./licence-proof.js";
import { attr, childText, type ScannerSink, StreamScanner, scanFrame } from "./scanner.js";
import { type ScramKeyCache, ScramSha1Client } from "./scram.js";

export interface ConnectionTarget {
  host: string;
  port: number;
  domain: string;
  /** Negotiate STARTTLS before authenticating. */
  tls?: boolean;
  /** TLS from the first byte (XEP-0368, ALPN "xmpp-client"). */
  directTls?: boolean;
  /**
   * XMPP over WebSocket (RFC 7395): `ws://host:port` + this path, subprotocol `xmpp`, one
   * element per message, `<open/>` and `<close/>` for the stream's ends.
   */
  websocketPath?: string;
  /**
   * Enable stream management after binding (XEP-0198, answering the server's `<r/>`), as a
   * phone client does, before the initial presence.
   */
  streamManagement?: boolean;
  /** Enable message carbons (XEP-0280) after binding, before the initial presence. */
  carbons?: boolean;
}

const SM_NS = "urn:xmpp:sm:3";
const FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing";

type Phase =
  | "connecting"
  | "features"
  | "starttls"
  | "licence"
  | "challenge"
  | "success"
  | "bound-features"
  | "bind"
  | "ready"
  | "online";

const SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl";
const LOGIN_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 5_000;

export class BenchConnection {
  /** Called with the open tag of every <message/> received once online. */
  onMessage: ((openTag: string) => void) | undefined;
  /** Called once if the connection ends while online without close() having been called. */
  onLost: ((reason: string) => void) | undefined;
  /** Full JID the server bound. */
  jid = "";

  /** The TCP connection (undefined over WebSocket). */
  private readonly socket: net.Socket | undefined;
  /** Where stanzas are written: the TCP socket, or the TLS socket over it after STARTTLS. */
  private out: net.Socket | tls.TLSSocket | undefined;
  /** The WebSocket connection (over WebSocket only, once login() opened it). */
  private ws: WebSocket | undefined;
  private readonly sink: ScannerSink;
  private readonly scanner: StreamScanner;
  private phase: Phase = "connecting";
  private scram: ScramSha1Client;
  /** The id of the current stream header (a licence proof is bound to it). */
  private streamId = "";
  private loginDone: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private closeDone: (() => void) | undefined;
  private closing = false;
  private ended = false;
  private lostReported = false;
  /** Stanzas received since stream management was enabled (`h`, modulo 2^32), or undefined before. */
  private handled: number | undefined;

  constructor(
    private readonly target: ConnectionTarget,
    private readonly username: string,
    password: string,
    cache: ScramKeyCache,
    /** Proves a client licence before SASL when the server offers the step. */
    private readonly licence?: LicenceProver,
  ) {
    this.scram = new ScramSha1Client(username, password, cache);
    this.sink = {
      streamOpen: (openTag) => {
        this.streamId = attr(openTag, "id") ?? "";
      },
      stanza: (name, openTag, text) => this.onStanza(name, openTag, text),
      streamClose: () => this.onStreamClose(),
    };
    this.scanner = new StreamScanner(this.sink);
    if (target.websocketPath !== undefined) return; // the WebSocket is opened by login()
    this.socket = new net.Socket();
    this.socket.setNoDelay(true);
    this.socket.setEncoding("utf8");
    this.socket.on("data", (chunk: string) => {
      try {
        this.scanner.push(chunk);
      } catch (err) {
        this.fail((err as Error).message);
      }
    });
    this.socket.on("error", (err) => this.fail(`socket error: ${err.message}`));
    this.socket.on("close", () => this.onSocketClose());
    this.out = this.socket;
  }

  private startTls(): void {
    const socket = this.socket as net.Socket;
    socket.removeAllListeners("data");
    const secure = tls.connect({
      socket,
      servername: this.target.domain,
      rejectUnauthorized: false,
      ...(this.target.directTls ? { ALPNProtocols: ["xmpp-client"] } : {}),
    });
    this.out = secure;
    secure.setEncoding("utf8");
    secure.on("data", (chunk: string) => {
      try {
        this.scanner.push(chunk);
      } catch (err) {
        this.fail((err as Error).message);
      }
    });
    secure.on("error", (err) => this.fail(`TLS error: ${err.message}`));
    secure.once("secureConnect", () => {
      this.scanner.restart();
      this.phase = "features";
      this.openStream();
    });
  }

  private channelBinding(type: string): Buffer | undefined {
    if (!(this.out instanceof tls.TLSSocket)) return undefined;
    if (type === "tls-exporter")
      return this.out.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
    return undefined;
  }

  /** Connects and logs in; resolves once presence is sent and acknowledged by the ping barrier. */
  login(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(`login timed out in phase ${this.phase}`), LOGIN_TIMEOUT_MS);
      this.loginDone = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (this.target.websocketPath !== undefined) {
        this.openWebSocket(this.target.websocketPath);
        return;
      }
      (this.socket as net.Socket).connect(this.target.port, this.target.host, () => {
        if (this.target.directTls) {
          this.phase = "starttls";
          this.startTls();
          return;
        }
        this.phase = "features";
        this.openStream();
      });
    });
  }

  get online(): boolean {
    return this.phase === "online" && !this.ended;
  }

  send(text: string): void {
    if (this.ws) this.ws.send(withContentNamespace(text));
    else this.out?.write(text);
  }

  /** Several elements: one write over TCP, one message each over WebSocket (RFC 7395). */
  private sendAll(elements: string[]): void {
    if (this.ws) for (const e of elements) this.ws.send(withContentNamespace(e));
    else this.out?.write(elements.join(""));
  }

  private openWebSocket(pathname: string): void {
    const url = `ws://${this.target.host.includes(":") ? `[${this.target.host}]` : this.target.host}:${this.target.port}${pathname}`;
    // No compression (neither server offers it); UTF-8 is checked by the XML reading anyway.
    const ws = new WebSocket(url, "xmpp", { perMessageDeflate: false, skipUTF8Validation: true });
    this.ws = ws;
    ws.on("open", () => {
      if (ws.protocol !== "xmpp") {
        this.fail(`WebSocket subprotocol "${ws.protocol}" instead of "xmpp"`);
        return;
      }
      this.phase = "features";
      this.openStream();
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        this.fail("binary WebSocket message from the server (RFC 7395 uses text)");
        return;
      }
      try {
        scanFrame(data.toString("utf8"), this.sink);
      } catch (err) {
        this.fail((err as Error).message);
      }
    });
    ws.on("unexpected-response", (_req, res) =>
      this.fail(`WebSocket upgrade refused: HTTP ${res.statusCode}`),
    );
    ws.on("error", (err) => this.fail(`WebSocket error: ${err.message}`));
    ws.on("close", () => this.onSocketClose());
  }

  /** Drops the connection at once. */
  private destroy(): void {
    if (this.ws) this.ws.terminate();
    else this.socket?.destroy();
  }

  /** Closes the stream and waits for the server to close its side (or a timeout). */
  close(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.closing = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.destroy(), CLOSE_TIMEOUT_MS);
      this.closeDone = () => {
        clearTimeout(timer);
        resolve();
      };
      this.send(this.ws ? `<close xmlns='${FRAMING_NS}'/>` : "</stream:stream>");
    });
  }

  private openStream(): void {
    if (this.ws) {
      this.send(`<open xmlns='${FRAMING_NS}' to='${this.target.domain}' version='1.0'/>`);
      return;
    }
    this.send(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${this.target.domain}' version='1.0'>`,
    );
  }

  private onStanza(name: string, openTag: string, text: string): void {
    if (name === "r" || name === "a" || name === "enabled" || name === "failed") {
      this.onStreamManagement(name, text);
      return;
    }
    if (this.handled !== undefined) this.handled = (this.handled + 1) % 2 ** 32;
    if (name === "message") {
      this.onMessage?.(openTag);
      return;
    }
    if (name === "stream:error") {
      this.fail(`stream error: ${text}`);
      return;
    }
    switch (this.phase) {
      case "features":
        if (name !== "stream:features") return;
        if (this.target.tls && this.out === this.socket) {
          this.phase = "starttls";
          this.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
          return;
        }
        if (!/<mechanism>SCRAM-SHA-1<\/mechanism>/.test(text)) {
          this.fail(`SCRAM-SHA-1 not offered: ${text}`);
          return;
        }
        if (this.licence) {
          let proof: string | undefined;
          try {
            proof = this.licence.proofFor(text, this.streamId, (type) => this.channelBinding(type));
          } catch (err) {
            this.fail((err as Error).message);
            return;
          }
          if (proof !== undefined) {
            // Pipelined: <auth/> follows the proof without waiting for its answer (the server
            // handles a stream's elements in order and closes the stream if the proof fails).
            this.send(proof);
            this.startSasl();
            this.phase = "licence";
            return;
          }
        }
        this.startSasl();
        return;
      case "starttls":
        if (name !== "proceed") {
          this.fail(`STARTTLS refused: ${text}`);
          return;
        }
        this.startTls();
        return;
      case "licence":
        if (!isLicenceSuccess(name, openTag)) {
          this.fail(`licence proof not accepted: ${text}`);
          return;
        }
        this.licence?.accepted(text);
        this.phase = "challenge"; // <auth/> was sent with the proof
        return;
      case "challenge":
        if (name !== "challenge") {
          this.saslFailure(name, text);
          return;
        }
        this.phase = "success";
        try {
          this.send(
            `<response xmlns='${SASL_NS}'>${this.scram.respond(childText(text, "challenge") ?? "")}</response>`,
          );
        } catch (err) {
          this.fail((err as Error).message);
        }
        return;
      case "success":
        if (name !== "success") {
          this.saslFailure(name, text);
          return;
        }
        if (!this.scram.verifySuccess(childText(text, "success") ?? "")) {
          this.fail("SCRAM: server signature does not verify");
          return;
        }
        this.phase = "bound-features";
        if (!this.ws) this.scanner.restart();
        this.openStream();
        return;
      case "bound-features":
        if (name !== "stream:features") return;
        if (!text.includes("urn:ietf:params:xml:ns:xmpp-bind")) {
          this.fail(`bind not offered: ${text}`);
          return;
        }
        this.phase = "bind";
        this.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
        return;
      case "bind":
        if (name !== "iq" || attr(openTag, "id") !== "bind") return;
        if (attr(openTag, "type") !== "result") {
          this.fail(`bind failed: ${text}`);
          return;
        }
        this.jid = childText(text, "jid") ?? "";
        this.phase = "ready";
        this.sendAll([
          ...(this.target.streamManagement ? [`<enable xmlns='${SM_NS}'/>`] : []),
          ...(this.target.carbons
            ? [`<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>`]
            : []),
          "<presence/>",
          `<iq type='get' id='barrier' to='${this.target.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`,
        ]);
        return;
      case "ready":
        if (name !== "iq" || attr(openTag, "id") !== "barrier") return;
        // A result or an error both prove the presence before it was handled.
        this.phase = "online";
        this.loginDone?.resolve();
        this.loginDone = undefined;
        return;
      case "online":
        if (name === "iq") this.answerIq(openTag);
        return;
      default:
        return;
    }
  }

  private onStreamManagement(name: string, text: string): void {
    if (name === "enabled") this.handled = 0;
    else if (name === "failed") this.fail(`stream management refused: ${text}`);
    else if (name === "r" && this.handled !== undefined)
      this.send(`<a xmlns='${SM_NS}' h='${this.handled}'/>`);
  }

  private startSasl(): void {
    this.phase = "challenge";
    this.send(`<auth xmlns='${SASL_NS}' mechanism='SCRAM-SHA-1'>${this.scram.initialResponse()}</auth>`);
  }

  private saslFailure(name: string, text: string): void {
    this.fail(name === "failure" ? `SASL failure: ${text}` : `unexpected <${name}/> during SASL: ${text}`);
  }

  /** Answers server-initiated get/set queries (e.g. pings) so the server sees a live client. */
  private answerIq(openTag: string): void {
    const type = attr(openTag, "type");
    if (type !== "get" && type !== "set") return;
    const id = attr(openTag, "id") ?? "";
    const from = attr(openTag, "from");
    this.send(`<iq type='result' id='${id}'${from ? ` to='${from}'` : ""}/>`);
  }

  private onStreamClose(): void {
    if (!this.closing) this.fail("server closed the stream");
    if (this.ws) {
      // RFC 7395: a close the server started is answered with <close/>; the server then closes
      // the WebSocket connection.
      if (!this.closing && this.ws.readyState === WebSocket.OPEN) this.send(`<close xmlns='${FRAMING_NS}'/>`);
      this.ws.close(1000);
    } else this.socket?.end();
  }

  private onSocketClose(): void {
    const wasOnline = this.phase === "online";
    this.ended = true;
    if (this.loginDone) this.fail("connection closed during login");
    if (this.closeDone) {
      this.closeDone();
      this.closeDone = undefined;
    } else if (wasOnline && !this.closing) {
      this.reportLost("connection closed by the server");
    }
  }

  private reportLost(reason: string): void {
    if (this.lostReported) return;
    this.lostReported = true;
    this.onLost?.(reason);
  }

  private fail(reason: string): void {
    if (this.loginDone) {
      const done = this.loginDone;
      this.loginDone = undefined;
      done.reject(new Error(`${this.username}: ${reason}`));
      this.destroy();
    } else if (!this.closing && !this.ended) {
      this.reportLost(reason);
      this.destroy();
    }
  }
}

/**
 * Over WebSocket every message is a whole element with no stream header around it to inherit
 * a namespace from (RFC 7395): a stanza written without one gets `xmlns='jabber:client'`.
 * Only the start tag is read (no '>' in the attribute values the generator writes).
 */
export function withContentNamespace(element: string): string {
  const gt = element.indexOf(">");
  const startTag = gt < 0 ? element : element.slice(0, gt);
  if (/\sxmlns=/.test(startTag)) return element;
  const nameEnd = element.search(/[\s/>]/);
  if (nameEnd < 0) return element;
  return `${element.slice(0, nameEnd)} xmlns='jabber:client'${element.slice(nameEnd)}`;
}
