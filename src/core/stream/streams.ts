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

  constructor(
    private readonly svc: StreamServices,
    private readonly host: SessionHost,
  ) {}

  /** Runs a client stream over a new connection; `onClosed` runs when it is gone. */
  accept(transport: StreamTransport, onClosed?: () => void): ClientStream {
    const stream = new ClientStream(this.svc, transport, this.host, (s) => {
      this.open.delete(s);
      onClosed?.();
    });
    this.open.add(stream);
    return stream;
  }

  /** Closes every stream (e.g. with system-shutdown). */
  closeAll(error: StreamError): void {
    for (const s of [...this.open]) s.close(error);
  }
}
