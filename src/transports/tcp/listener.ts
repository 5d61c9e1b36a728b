/**
 * The client listeners on TCP: STARTTLS on c2sPort and direct TLS (XEP-0368, ALPN
 * "xmpp-client") on c2sTlsPort, with connection limits per server and per address.
 * Each accepted socket becomes a SocketTransport run by the stream engine; the limits are
 * counted over every transport by ClientStreams.
 */
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "pino";
import type { ClientStreams } from "../../core/stream/streams.js";
import { listenOnAddresses } from "../listen.js";
import { selectAlpn, type TlsMaterial } from "../tls.js";
import { SocketTransport } from "./socket-transport.js";

export interface TcpListenerOptions {
  streams: ClientStreams;
  /** Listen addresses; every port is opened on each. */
  bind: readonly string[];
  c2sPort: number;
  c2sTlsPort: number;
  /** Undefined when TLS is not available (plaintext-only test setups). */
  tls: TlsMaterial | undefined;
  log: Logger;
}

export class TcpClientListener {
  private readonly servers: net.Server[] = [];

  constructor(private readonly opts: TcpListenerOptions) {}

  async listen(): Promise<{ c2sPort?: number; c2sTlsPort?: number }> {
    const { opts } = this;
    const out: { c2sPort?: number; c2sTlsPort?: number } = {};
    if (opts.c2sPort > 0) {
      const plain = () => net.createServer({ noDelay: true }, (socket) => this.accept(socket, false));
      out.c2sPort = await this.bindAll(plain, opts.c2sPort, "c2s");
    }
    const material = opts.tls;
    if (opts.c2sTlsPort > 0 && material) {
      const direct = () => {
        const server = tls.createServer(
          {
            // tls.Server builds its own context from these (it takes no secureContext).
            cert: material.certPem,
            key: material.keyPem,
            ...material.contextOptions,
            // Each served domain's certificate for the name the client asks for.
            SNICallback: material.SNICallback,
            ALPNCallback: selectAlpn("xmpp-client"),
            noDelay: true,
          },
          (socket) => this.accept(socket, true),
        );
        server.on("tlsClientError", (err) => opts.log.debug({ err: err.message }, "TLS handshake failed"));
        // A client without SNI gets the server's own context: renewed with the files.
        material.onChange(() =>
          server.setSecureContext({
            cert: material.certPem,
            key: material.keyPem,
            ...material.contextOptions,
          }),
        );
        return server;
      };
      out.c2sTlsPort = await this.bindAll(direct, opts.c2sTlsPort, "c2s direct TLS");
    }
    return out;
  }

  private async bindAll(make: () => net.Server, port: number, what: string): Promise<number> {
    const listening = await listenOnAddresses(
      this.opts.bind,
      port,
      (host, p) => this.bind(make(), host, p),
      this.opts.log,
      what,
    );
    return listening.port;
  }

  private bind(server: net.Server, host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port, host, backlog: 4096 }, () => {
        server.off("error", reject);
        server.on("error", (err) => this.opts.log.error({ err }, "listener error"));
        this.servers.push(server);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket, directTls: boolean): void {
    const { streams } = this.opts;
    if (!streams.admits(socket.remoteAddress ?? "unknown")) {
      socket.destroy();
      return;
    }
    streams.accept(new SocketTransport(socket, this.opts.tls, directTls));
  }

  /** Stops accepting connections. */
  async stopAccepting(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }
}
