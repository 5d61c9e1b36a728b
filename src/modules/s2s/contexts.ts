/**
 * The TLS contexts of server-to-server links, one per served domain for both directions (its
 * certificate, the trusted roots), made when the domain's first link needs it. A context holds
 * its own copy of every trusted root (the system's and `s2sCa`): made per connection, as
 * `tls.connect` does from `ca`/`cert`/`key` options, that cost about 40 ms of CPU and 1 MiB of
 * memory for each outgoing link (measured on Node 20 with the system's 144 roots).
 */
import tls from "node:tls";
import type { HostCertificate, TlsMaterial } from "../../transports/tls.js";

export class PeerContexts {
  // By certificate: a reload's new certificate gets a new context, and the old one goes with it.
  private readonly contexts = new WeakMap<HostCertificate, tls.SecureContext>();

  constructor(
    private readonly material: Pick<TlsMaterial, "certificateFor" | "contextOptions">,
    private readonly trusted: readonly string[],
  ) {}

  /** The context for links of this served domain (the primary domain's for a name it does not serve). */
  for(domain: string | undefined): tls.SecureContext {
    const host = this.material.certificateFor(domain);
    let context = this.contexts.get(host);
    if (!context) {
      context = tls.createSecureContext({
        ...this.material.contextOptions,
        cert: host.certPem,
        key: host.keyPem,
        ca: [...this.trusted],
      });
      this.contexts.set(host, context);
    }
    return context;
  }
}
