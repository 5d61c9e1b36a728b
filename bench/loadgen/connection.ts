/**
 * One benchmark client connection over plain TCP, STARTTLS or direct TLS (XEP-0368): stream open, SASL SCRAM-SHA-1, stream restart,
 * resource bind, initial presence, then a ping round trip as a barrier (the server handles a
 * stream's stanzas in order, so its answer proves the presence was processed). After that it
 * sends whatever it is given and reports each received <message/>.
 */
import net from "node:net";
import tls from "node:tls";
import { isLicenceSuccess, type LicenceProver } from "./licence-proof.js";
import { attr, childText, StreamScanner } from "./scanner.js";
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
   * Behave as a phone client: enable stream management (XEP-0198, answering the server's
   * `<r/>`) and message carbons (XEP-0280) after binding, before the initial presence.
   */
  mobile?: boolean;
}

const SM_NS = "urn:xmpp:sm:3";

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

  private readonly socket: net.Socket;
  /** Where stanzas are written: the TCP socket, or the TLS socket over it after STARTTLS. */
  private out: net.Socket | tls.TLSSocket;
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
    this.scanner = new StreamScanner({
      streamOpen: (openTag) => {
        this.streamId = attr(openTag, "id") ?? "";
      },
      stanza: (name, openTag, text) => this.onStanza(name, openTag, text),
      streamClose: () => this.onStreamClose(),
    });
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
    this.socket.removeAllListeners("data");
    const secure = tls.connect({
      socket: this.socket,
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
      this.socket.connect(this.target.port, this.target.host, () => {
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
    this.out.write(text);
  }

  /** Closes the stream and waits for the server to close its side (or a timeout). */
  close(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.closing = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
      this.closeDone = () => {
        clearTimeout(timer);
        resolve();
      };
      this.out.write("</stream:stream>");
    });
  }

  private openStream(): void {
    this.out.write(
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
        this.scanner.restart();
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
        if (this.target.mobile)
          this.send(
            `<enable xmlns='${SM_NS}'/><iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>`,
          );
        this.send(
          `<presence/><iq type='get' id='barrier' to='${this.target.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`,
        );
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
    this.socket.end();
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
      this.socket.destroy();
    } else if (!this.closing && !this.ended) {
      this.reportLost(reason);
      this.socket.destroy();
    }
  }
}
