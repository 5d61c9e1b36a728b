/**
 * The client streams of this process, whatever transport carries them: every transport
 * hands its new connections here, so limits, metrics and shutdown see them all.
 */
import type { StreamError } from "../errors.js";
import { ClientStream } from "./engine.js";
import type { SessionHost } from "./local-session.js";
import type { StreamServices } from "./services.js";
import type { StreamTransport } from "./transport.js";

export class ClientStreams {
  readonly open = new Set<ClientStream>();
  /** Open connections by remote address, over every transport (limits.maxConnectionsPerAddress). */
  private readonly perAddress = new Map<string, number>();
  /** False once the server stopped taking connections (a cluster node draining). */
  private accepting = true;

  constructor(
    private readonly svc: StreamServices,
    private readonly host: SessionHost,
  ) {}

  /**
   * Whether one more connection from `address` stays within the connection limits
   * (limits.maxConnections, limits.maxConnectionsPerAddress). A transport asks before it
   * reads anything, and drops the connection when not: a stream error would cost the
   * resources the limits protect.
   */
  admits(address: string): boolean {
    if (!this.accepting) return false;
    const { maxConnections, maxConnectionsPerAddress } = this.svc.config.limits;
    if (maxConnections > 0 && this.open.size >= maxConnections) return false;
    return maxConnectionsPerAddress <= 0 || (this.perAddress.get(address) ?? 0) < maxConnectionsPerAddress;
  }

  /** Runs a client stream over a new connection; `onClosed` runs when it is gone. */
  accept(transport: StreamTransport, onClosed?: () => void): ClientStream {
    const address = transport.remoteAddress;
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    const stream = new ClientStream(this.svc, transport, this.host, (s) => {
      this.open.delete(s);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
      onClosed?.();
    });
    this.open.add(stream);
    return stream;
  }

  /** Admits no more connections, over any transport. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Closes every stream (e.g. with system-shutdown). `resumable`: their sessions may be kept
   * for resumption (elsewhere), as when a connection is lost.
   */
  closeAll(error: StreamError, opts?: { resumable?: boolean }): void {
    for (const s of [...this.open]) s.close(error, opts);
  }
}
