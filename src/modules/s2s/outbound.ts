/**
 * One outbound server-to-server stream from one of our domains to a remote domain: connect to
 * the first reachable target, STARTTLS (checking the remote's certificate against its domain),
 * then authenticate with SASL EXTERNAL when the remote accepts our certificate, else with
 * Server Dialback (XEP-0220). The same stream carries `<db:verify/>` requests when the remote
 * domain's server is the authoritative server for a key another stream presented to us.
 */
import net from "node:net";
import tls from "node:tls";
import type { StanzaErrorCondition } from "../../core/errors.js";
import { StreamError } from "../../core/errors.js";
import { isStanza } from "../../core/router.js";
import type { TransportLimits, TransportSink } from "../../core/stream/transport.js";
import { escapeAttr, serialize, type XmlElement, x } from "../../core/xml/element.js";
import {
  NS_DIALBACK,
  NS_DIALBACK_FEATURE,
  NS_SASL,
  NS_SERVER,
  NS_STANZAS,
  NS_STREAM,
  NS_STREAM_ERRORS,
  NS_TLS,
} from "../../core/xml/namespaces.js";
import { SocketTransport } from "../../transports/tcp/socket-transport.js";
import type { S2SAuthMethod } from "./api.js";
import type { DialbackOutcome } from "./inbound.js";
import type { Target } from "./resolve.js";

export interface OutboundDeps {
  limits: TransportLimits;
  requireTls: boolean;
  connectTimeoutMs: number;
  /** TLS options for a handshake with `remote` as the client (trust store, our certificate for `local`). */
  clientTls(local: string, remote: string): tls.ConnectionOptions;
  /** Does the remote's certificate authenticate `domain`? */
  certificateAuthenticates(socket: tls.TLSSocket, domain: string): boolean;
  dialbackKey(receiving: string, originating: string, streamId: string): string;
  /** Authenticated: stanzas may flow. */
  ready(stream: OutboundStream): void;
  /** The stream ended (failed before it was ready, closed, lost). */
  ended(stream: OutboundStream, failure: StanzaErrorCondition | undefined, detail: string): void;
  log: {
    debug(obj: object, msg: string): void;
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
}

type Phase = "connecting" | "features" | "tls" | "sasl" | "dialback" | "ready" | "closed";

export class OutboundStream implements TransportSink {
  phase: Phase = "connecting";
  transport: SocketTransport | undefined;
  method: S2SAuthMethod | undefined;
  /** The remote's certificate was valid for its domain. */
  certificateVerified = false;
  readyAt = 0;
  stanzasOut = 0;
  address = "";
  private streamId: string | undefined;
  private dialbackDeclared = false;
  private saslDone = false;
  private externalFailed = false;
  private readonly verifies = new Map<
    string,
    { key: string; resolve: (o: DialbackOutcome) => void; sent: boolean }
  >();
  private timer: NodeJS.Timeout | undefined;
  private endedNotified = false;

  constructor(
    readonly localDomain: string,
    readonly remoteDomain: string,
    private readonly deps: OutboundDeps,
  ) {}

  /** Tries the targets in order until one accepts a connection; negotiation follows. */
  async connect(targets: Target[]): Promise<void> {
    this.timer = setTimeout(
      () => this.fail("remote-server-timeout", "no authenticated stream in time"),
      this.deps.connectTimeoutMs,
    );
    this.timer.unref();
    let lastError = "no address to connect to";
    for (const target of targets) {
      if (this.phase === "closed") return;
      try {
        const socket = await this.open(target);
        if ((this.phase as Phase) === "closed") {
          socket.destroy();
          return;
        }
        this.address = `${target.host}:${target.port}`;
        this.transport = new SocketTransport(socket, undefined, target.directTls);
        if (target.directTls) this.tlsEstablished(socket as tls.TLSSocket);
        this.transport.start(this, this.deps.limits);
        this.phase = "features";
        this.writeHeader();
        return;
      } catch (err) {
        lastError = `${target.host}:${target.port}: ${(err as Error).message}`;
        this.deps.log.debug(
          { remote: this.remoteDomain, target, err: (err as Error).message },
          "s2s connection attempt failed",
        );
      }
    }
    this.fail("remote-server-not-found", lastError);
  }

  private open(target: Target): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = target.directTls
        ? tls.connect({
            host: target.host,
            port: target.port,
            ...this.deps.clientTls(this.localDomain, this.remoteDomain),
            ALPNProtocols: ["xmpp-server"],
          })
        : net.connect({ host: target.host, port: target.port, noDelay: true });
      const timer = setTimeout(
        () => {
          socket.destroy();
          reject(new Error("connection timed out"));
        },
        Math.min(10_000, this.deps.connectTimeoutMs),
      );
      socket.once(target.directTls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(socket);
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  private writeHeader(): void {
    this.transport?.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS_SERVER}' xmlns:stream='${NS_STREAM}' xmlns:db='${NS_DIALBACK}'` +
        ` from='${escapeAttr(this.localDomain)}' to='${escapeAttr(this.remoteDomain)}' version='1.0' xml:lang='en'>`,
    );
  }

  private write(el: XmlElement): void {
    if (this.phase !== "closed") this.transport?.write(serialize(el));
  }

  get queuedBytes(): number {
    return this.transport?.queuedBytes ?? 0;
  }

  /** Writes a stanza; returns its size in bytes. */
  send(stanza: XmlElement): number {
    if (this.phase !== "ready") throw new Error("stream not ready");
    this.stanzasOut++;
    const text = serialize(stanza);
    this.transport?.write(text);
    return Buffer.byteLength(text);
  }

  /** Asks the remote (as the authoritative server) whether it issued `key` for stream `id`. */
  verify(id: string, key: string): Promise<DialbackOutcome> {
    return new Promise((resolve) => {
      const existing = this.verifies.get(id);
      if (existing) existing.resolve("conflict" as StanzaErrorCondition);
      this.verifies.set(id, { key, resolve, sent: false });
      this.sendVerifies();
    });
  }

  private sendVerifies(): void {
    if (!this.transport?.secure && this.deps.requireTls) return;
    if (this.phase === "connecting" || this.phase === "tls" || this.phase === "closed") return;
    if (this.streamId === undefined) return;
    for (const [id, v] of this.verifies) {
      if (v.sent) continue;
      v.sent = true;
      this.write(x("db:verify", { from: this.localDomain, to: this.remoteDomain, id }, v.key));
    }
  }

  streamStart(attrs: Record<string, string>): void {
    if (this.phase === "closed") return;
    if (attrs.xmlns !== NS_SERVER) {
      this.close(new StreamError("invalid-namespace", "expected a jabber:server stream"));
      return;
    }
    this.streamId = attrs.id;
    this.dialbackDeclared = attrs["xmlns:db"] === NS_DIALBACK;
  }

  element(el: XmlElement): void {
    if (this.phase === "closed") return;
    try {
      this.handle(el);
    } catch (err) {
      if (err instanceof StreamError) this.close(err);
      else throw err;
    }
  }

  private handle(el: XmlElement): void {
    const ns = el.attrs.xmlns;
    if (ns === NS_STREAM && el.name === "features") {
      this.features(el);
      return;
    }
    if (ns === NS_STREAM && el.name === "error") {
      const condition = el
        .elements()
        .find((c) => c.attrs.xmlns === NS_STREAM_ERRORS && c.name !== "text")?.name;
      const text = el.getChildText("text", NS_STREAM_ERRORS);
      this.fail(
        condition === "policy-violation" ? "policy-violation" : "remote-server-timeout",
        `stream error from ${this.remoteDomain}: ${condition ?? "unknown"}${text ? ` (${text})` : ""}`,
        false,
      );
      return;
    }
    if (ns === NS_TLS && el.name === "proceed" && this.phase === "tls") {
      this.upgrade();
      return;
    }
    if (ns === NS_TLS && el.name === "failure") {
      this.fail("remote-server-timeout", "STARTTLS failed");
      return;
    }
    if (ns === NS_SASL && this.phase === "sasl") {
      if (el.name === "success") {
        this.saslDone = true;
        this.method = "sasl-external";
        this.transport!.restartStream();
        this.phase = "features";
        this.writeHeader();
        return;
      }
      this.externalFailed = true;
      this.authenticate();
      return;
    }
    if (ns === NS_DIALBACK && el.name === "result") {
      this.dialbackResult(el);
      return;
    }
    if (ns === NS_DIALBACK && el.name === "verify") {
      this.verifyResult(el);
      return;
    }
    if (isStanza(el)) {
      // Stanzas come in on the remote's own stream to us (no XEP-0288 here).
      throw new StreamError("unsupported-stanza-type", "stanzas on this stream go the other way");
    }
    this.deps.log.debug(
      { remote: this.remoteDomain, element: el.name },
      "unexpected element on an outbound stream",
    );
  }

  private features(el: XmlElement): void {
    if (this.phase === "ready") return;
    const secure = this.transport!.secure;
    if (!secure && el.getChild("starttls", NS_TLS)) {
      this.phase = "tls";
      this.write(x("starttls", { xmlns: NS_TLS }));
      return;
    }
    if (!secure && this.deps.requireTls) {
      this.fail("remote-server-timeout", `${this.remoteDomain} does not offer TLS`);
      return;
    }
    this.phase = "features";
    this.sendVerifies();
    if (this.saslDone) {
      this.becomeReady();
      return;
    }
    const mechanisms = el.getChild("mechanisms", NS_SASL);
    this.offersExternal =
      mechanisms?.getChildren("mechanism").some((m) => m.text().trim() === "EXTERNAL") ?? false;
    this.offersDialback = this.dialbackDeclared || el.getChild("dialback", NS_DIALBACK_FEATURE) !== undefined;
    this.authenticate();
  }

  private offersExternal = false;
  private offersDialback = false;

  private authenticate(): void {
    if (this.offersExternal && !this.externalFailed) {
      this.phase = "sasl";
      this.write(
        x(
          "auth",
          { xmlns: NS_SASL, mechanism: "EXTERNAL" },
          Buffer.from(this.localDomain).toString("base64"),
        ),
      );
      return;
    }
    if (this.offersDialback && this.streamId !== undefined) {
      this.phase = "dialback";
      const key = this.deps.dialbackKey(this.remoteDomain, this.localDomain, this.streamId);
      this.write(x("db:result", { from: this.localDomain, to: this.remoteDomain }, key));
      return;
    }
    this.fail("remote-server-timeout", `${this.remoteDomain} offers no authentication we can use`);
  }

  private upgrade(): void {
    const options = this.deps.clientTls(this.localDomain, this.remoteDomain);
    this.transport!.upgradeTls(
      (raw) => tls.connect({ ...options, socket: raw }),
      "secureConnect",
      (socket) => {
        this.tlsEstablished(socket);
        this.phase = "features";
        this.writeHeader();
      },
    );
  }

  private tlsEstablished(socket: tls.TLSSocket): void {
    this.certificateVerified = this.deps.certificateAuthenticates(socket, this.remoteDomain);
  }

  private dialbackResult(el: XmlElement): void {
    if (this.phase !== "dialback") return;
    if (el.attrs.from?.toLowerCase() !== this.remoteDomain || el.attrs.to?.toLowerCase() !== this.localDomain)
      return;
    const type = el.attrs.type;
    if (type === "valid") {
      this.method = "dialback";
      this.becomeReady();
    } else if (type === "invalid") {
      this.fail("remote-server-timeout", `${this.remoteDomain} refused our dialback key`);
    } else {
      const condition = el
        .getChild("error")
        ?.elements()
        .find((c) => c.attrs.xmlns === NS_STANZAS)?.name;
      this.fail(
        "remote-server-timeout",
        `dialback error from ${this.remoteDomain}: ${condition ?? "unknown"}`,
      );
    }
  }

  private verifyResult(el: XmlElement): void {
    const id = el.attrs.id;
    const pending = id === undefined ? undefined : this.verifies.get(id);
    if (!pending) return;
    this.verifies.delete(id!);
    const type = el.attrs.type;
    if (type === "valid" || type === "invalid") pending.resolve(type);
    else {
      const condition = el
        .getChild("error")
        ?.elements()
        .find((c) => c.attrs.xmlns === NS_STANZAS)?.name;
      pending.resolve((condition as StanzaErrorCondition | undefined) ?? "remote-server-not-found");
    }
  }

  private becomeReady(): void {
    clearTimeout(this.timer);
    this.phase = "ready";
    this.readyAt = Date.now();
    this.deps.ready(this);
  }

  streamEnd(): void {
    this.close();
  }

  error(err: StreamError): void {
    this.close(err);
  }

  connectionClosed(): void {
    this.notifyEnded(this.readyAt === 0 ? "remote-server-timeout" : undefined, "connection closed");
  }

  private fail(condition: StanzaErrorCondition, detail: string, sendError = true): void {
    if (this.phase === "closed") return;
    this.deps.log.info(
      { remote: this.remoteDomain, local: this.localDomain, detail },
      "server-to-server stream failed",
    );
    this.closeTransport(sendError ? new StreamError("undefined-condition", detail) : undefined);
    this.notifyEnded(condition, detail);
  }

  /** Closes the stream (a stream error first when given). */
  close(error?: StreamError): void {
    if (this.phase === "closed") return;
    const failure = this.readyAt === 0 ? ("remote-server-timeout" as const) : undefined;
    this.closeTransport(error);
    this.notifyEnded(failure, error ? error.condition : "closed");
  }

  private closeTransport(error?: StreamError): void {
    this.phase = "closed";
    clearTimeout(this.timer);
    const t = this.transport;
    if (!t) return;
    if (error) t.write(serialize(error.toElement()));
    t.closeStream();
    t.end();
  }

  private notifyEnded(failure: StanzaErrorCondition | undefined, detail: string): void {
    if (this.endedNotified) return;
    this.endedNotified = true;
    this.phase = "closed";
    clearTimeout(this.timer);
    for (const v of this.verifies.values()) v.resolve(failure ?? "remote-server-timeout");
    this.verifies.clear();
    this.deps.ended(this, failure, detail);
  }
}
