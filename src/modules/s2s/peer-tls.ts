/**
 * TLS between servers: the certificates trusted for peers (the system's store and `s2sCa`),
 * and whether a peer's certificate authenticates a domain (RFC 6125 DNS-ID, as XEP-0178 asks
 * for SASL EXTERNAL). A TLS server socket made for STARTTLS outside a tls.Server does not
 * check the client's chain itself, so the chain is checked here against the same trust store.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";

export class PeerTrust {
  /** PEM certificates, for TLS contexts. */
  readonly pems: string[];
  private readonly anchors: X509Certificate[];

  constructor(caFile: string | undefined) {
    this.pems = [...tls.rootCertificates];
    if (caFile) this.pems.push(...splitPem(readFileSync(caFile, "utf8")));
    this.anchors = this.pems.flatMap((pem) => {
      try {
        return [new X509Certificate(pem)];
      } catch {
        return [];
      }
    });
  }

  /** True when the socket's peer presented a chain ending in a trusted certificate, valid now, naming `domain`. */
  authenticates(socket: tls.TLSSocket, domain: string): boolean {
    const leaf = socket.getPeerCertificate(true);
    if (!leaf?.raw) return false;
    if (tls.checkServerIdentity(domain, leaf) !== undefined) return false;
    if (socket.authorized) return true;
    return this.chainTrusted(leaf);
  }

  private chainTrusted(leaf: tls.DetailedPeerCertificate): boolean {
    const now = Date.now();
    const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
    let node = leaf;
    let current = new X509Certificate(leaf.raw);
    for (let depth = 0; depth < 8; depth++) {
      if (!valid(current)) return false;
      if (this.anchors.some((a) => a.fingerprint256 === current.fingerprint256)) return true;
      const anchor = this.anchors.find((a) => current.checkIssued(a) && current.verify(a.publicKey));
      if (anchor) return valid(anchor);
      const next = node.issuerCertificate;
      if (!next?.raw || next === node) return false;
      const issuer = new X509Certificate(next.raw);
      if (!issuer.ca || !current.checkIssued(issuer) || !current.verify(issuer.publicKey)) return false;
      node = next;
      current = issuer;
    }
    return false;
  }
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
