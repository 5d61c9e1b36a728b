/**
 * The c2s listeners: STARTTLS on c2sPort and direct TLS (XEP-0368, ALPN
 * "xmpp-client") on c2sTlsPort, with connection limits per server and per address.
 */
import net from "node:net";
import tls from "node:tls";
import { C2SConnection } from "./connection.js";
import type { C2SServices } from "./services.js";

export class C2SListener {
  private readonly servers: net.Server[] = [];
  readonly connections = new Set<C2SConnection>();
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly svc: C2SServices) {}

  async listen(): Promise<{ c2sPort?: number; c2sTlsPort?: number }> {
    const { config } = this.svc;
    const out: { c2sPort?: number; c2sTlsPort?: number } = {};
    if (config.c2sPort > 0) {
      const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket, false));
      out.c2sPort = await this.bind(server, config.c2sPort);
    }
    if (config.c2sTlsPort > 0 && this.svc.tls) {
      const server = tls.createServer(
        {
          cert: this.svc.tls.certPem,
          key: this.svc.tls.keyPem,
          minVersion: "TLSv1.2",
          ALPNProtocols: ["xmpp-client"],
          noDelay: true,
        },
        (socket) => this.accept(socket, true),
      );
      server.on("tlsClientError", (err) => this.svc.log.debug({ err: err.message }, "TLS handshake failed"));
      out.c2sTlsPort = await this.bind(server, config.c2sTlsPort);
    }
    return out;
  }

  private bind(server: net.Server, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port, host: this.svc.config.bind, backlog: 4096 }, () => {
        server.off("error", reject);
        server.on("error", (err) => this.svc.log.error({ err }, "listener error"));
        this.servers.push(server);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket, directTls: boolean): void {
    const { limits } = this.svc.config;
    const addr = socket.remoteAddress ?? "unknown";
    const fromAddr = this.perAddress.get(addr) ?? 0;
    if (
      (limits.maxConnections > 0 && this.connections.size >= limits.maxConnections) ||
      (limits.maxConnectionsPerAddress > 0 && fromAddr >= limits.maxConnectionsPerAddress)
    ) {
      // Refused before any XML: a stream error would cost the resources the limit protects.
      socket.destroy();
      return;
    }
    this.perAddress.set(addr, fromAddr + 1);
    const conn = new C2SConnection(this.svc, socket, directTls, (c) => {
      this.connections.delete(c);
      const n = (this.perAddress.get(addr) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(addr);
      else this.perAddress.set(addr, n);
    });
    this.connections.add(conn);
  }

  /** Stops accepting connections. */
  async stopAccepting(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }
}
