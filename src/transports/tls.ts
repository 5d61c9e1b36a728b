/**
 * TLS material: the configured PEM files, or a self-signed certificate for each served
 * domain generated on first start and kept in dataDir/tls so clients can pin it.
 */
import { constants, createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import type { Logger } from "pino";
import { generate } from "selfsigned";
import { serverEndPoint } from "../../sdk/tls-end-point.js";
import type { ServerConfig } from "../core/config.js";

/** One served domain's certificate. */
export interface HostCertificate {
  /** The context a TLS handshake for this domain uses. */
  context: tls.SecureContext;
  certPem: string;
  keyPem: string;
  /** SHA-256 fingerprint, printed at startup so people can check what their client shows. */
  fingerprint: string;
  certFile: string;
  keyFile: string;
  selfSigned: boolean;
  /** The end of the certificate's validity. */
  notAfter: Date;
}

/**
 * The server's certificates: the primary domain's (the fields of HostCertificate, and the
 * one a client gets without SNI or with an unknown name) and each virtual host's, chosen by
 * the client's SNI name on every TLS listener. The fields read the current certificates: a
 * reload replaces them, and what holds a copy (a TLS server's default context) is told.
 */
export interface TlsMaterial extends HostCertificate {
  /** The options the contexts were made with besides the certificate (the listeners' too). */
  contextOptions: tls.SecureContextOptions;
  /** Every served domain's certificate, the primary's included. */
  hosts: ReadonlyMap<string, HostCertificate>;
  /** The certificate for an SNI name: its served domain's, else the primary's. */
  certificateFor(servername: string | undefined): HostCertificate;
  /** For tls.createServer and server-side TLSSockets: the context for the client's SNI name. */
  SNICallback(servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void;
  /**
   * Reads every domain's files again and takes the pairs that changed (a renewal needs no
   * restart). A pair that does not load (unreadable, not PEM, a key that is not the
   * certificate's: a renewal caught half-written) leaves its domain on the current one.
   */
  reload(): TlsReload;
  /** Called after a reload replaced a certificate: for listeners that copied the primary's. */
  onChange(listener: () => void): void;
  /**
   * Logs a warning for each certificate that expires within EXPIRY_WARNING_DAYS (or has
   * expired), at most once a day per domain; returns those domains.
   */
  warnOfExpiry(nowMs: number): string[];
}

/** A certificate this close to its end is logged every day until it is renewed. */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/** The name the server's certificates are offered to modules under (ModuleContext.api). */
export const SERVED_CERTIFICATES = "tls";

/** What a reload did, by domain. */
export interface TlsReload {
  replaced: string[];
  failed: { domain: string; error: string }[];
}

export async function loadTls(config: ServerConfig, log: Logger): Promise<TlsMaterial> {
  const contextOptions: tls.SecureContextOptions = {
    minVersion: "TLSv1.2",
    // No stateless session tickets, as in Prosody. Node keeps a connection's TLS output
    // buffer at the largest size it ever needed (1 KiB at first, then 16 KiB), and the tickets
    // written after the handshake are one of the things that grow it: a bare Node TLS server
    // holds 30 KiB per idle connection without them, 47 KiB with (docs/benchmarks.md). OpenSSL
    // then sends small stateful tickets, which Node, having no server-side session cache,
    // never resumes: every connection makes a full handshake.
    ...(config.tls.sessionTickets ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
  };
  const hosts = new Map<string, HostCertificate>();
  for (const host of [{ domain: config.domain, tls: config.tls }, ...config.hosts]) {
    if (hosts.has(host.domain)) continue;
    const files = await certificateFiles(host.domain, host.tls, config.dataDir, log);
    hosts.set(host.domain, readCertificate(files, contextOptions));
  }
  return new ServedCertificates(config.domain, hosts, contextOptions, log);
}

class ServedCertificates implements TlsMaterial {
  private readonly listeners: (() => void)[] = [];
  /** The last failure logged per domain, so a pair that stays broken is logged once. */
  private readonly lastFailure = new Map<string, string>();
  /** When each domain's coming expiry was last logged. */
  private readonly expiryWarned = new Map<string, number>();

  constructor(
    private readonly primaryDomain: string,
    readonly hosts: Map<string, HostCertificate>,
    readonly contextOptions: tls.SecureContextOptions,
    private readonly log: Logger,
  ) {}

  private get primary(): HostCertificate {
    return this.hosts.get(this.primaryDomain)!;
  }
  get context(): tls.SecureContext {
    return this.primary.context;
  }
  get certPem(): string {
    return this.primary.certPem;
  }
  get keyPem(): string {
    return this.primary.keyPem;
  }
  get fingerprint(): string {
    return this.primary.fingerprint;
  }
  get certFile(): string {
    return this.primary.certFile;
  }
  get keyFile(): string {
    return this.primary.keyFile;
  }
  get selfSigned(): boolean {
    return this.primary.selfSigned;
  }
  get notAfter(): Date {
    return this.primary.notAfter;
  }

  certificateFor(servername: string | undefined): HostCertificate {
    return (servername && this.hosts.get(servername.toLowerCase())) || this.primary;
  }

  SNICallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void =>
    cb(null, this.certificateFor(servername).context);

  reload(): TlsReload {
    const result: TlsReload = { replaced: [], failed: [] };
    for (const [domain, current] of this.hosts) {
      let next: HostCertificate;
      try {
        const pems = readPems(current);
        // Unchanged files (the usual case, every check): nothing to parse or build.
        if (pems.certPem === current.certPem && pems.keyPem === current.keyPem) {
          this.lastFailure.delete(domain);
          continue;
        }
        next = certificateFrom(current, pems, this.contextOptions);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        result.failed.push({ domain, error });
        if (this.lastFailure.get(domain) !== error) {
          this.lastFailure.set(domain, error);
          this.log.error(
            { domain, certFile: current.certFile, keyFile: current.keyFile, error },
            "TLS: the certificate files did not load; the current certificate stays in use",
          );
        }
        continue;
      }
      this.lastFailure.delete(domain);
      this.hosts.set(domain, next);
      result.replaced.push(domain);
      this.log.info(
        {
          domain,
          certFile: next.certFile,
          fingerprint: next.fingerprint,
          notAfter: next.notAfter.toISOString(),
        },
        "TLS: new connections get the certificate now in the files",
      );
    }
    if (result.replaced.length > 0) for (const listener of this.listeners) listener();
    return result;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  warnOfExpiry(nowMs: number): string[] {
    const soon: string[] = [];
    for (const [domain, host] of this.hosts) {
      const left = host.notAfter.getTime() - nowMs;
      if (left > EXPIRY_WARNING_DAYS * DAY_MS) {
        this.expiryWarned.delete(domain);
        continue;
      }
      soon.push(domain);
      const warned = this.expiryWarned.get(domain);
      if (warned !== undefined && nowMs - warned < DAY_MS) continue;
      this.expiryWarned.set(domain, nowMs);
      this.log.warn(
        {
          domain,
          certFile: host.certFile,
          notAfter: host.notAfter.toISOString(),
          daysLeft: Math.max(0, Math.floor(left / DAY_MS)),
        },
        left > 0
          ? "TLS: the certificate expires soon; renew it (the files are read again without a restart)"
          : "TLS: the certificate has expired; clients and peers that check it refuse this server",
      );
    }
    return soon;
  }
}

/** A domain's configured PEM files, or its self-signed pair in dataDir/tls (generated on first start). */
async function certificateFiles(
  domain: string,
  files: { certFile?: string | undefined; keyFile?: string | undefined },
  dataDir: string,
  log: Logger,
): Promise<CertificateFiles> {
  if (files.certFile && files.keyFile)
    return { certFile: files.certFile, keyFile: files.keyFile, selfSigned: false };
  const dir = path.join(dataDir, "tls");
  const certFile = path.join(dir, `${domain}.crt`);
  const keyFile = path.join(dir, `${domain}.key`);
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const notBefore = new Date(Date.now() - 60_000);
    const notAfter = new Date(notBefore.getTime() + 825 * 86_400_000);
    const pems = await generate([{ name: "commonName", value: domain }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      notBeforeDate: notBefore,
      notAfterDate: notAfter,
      extensions: [
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
        { name: "extKeyUsage", serverAuth: true },
        {
          name: "subjectAltName",
          altNames: [
            { type: 2, value: domain },
            { type: 2, value: `*.${domain}` },
          ],
        },
      ],
    });
    writeFileSync(keyFile, pems.private, { mode: 0o600 });
    writeFileSync(certFile, pems.cert, { mode: 0o644 });
    log.info({ certFile, domain }, "generated a self-signed certificate");
  }
  return { certFile, keyFile, selfSigned: true };
}

interface CertificateFiles {
  certFile: string;
  keyFile: string;
  selfSigned: boolean;
}

function readPems(files: CertificateFiles): { certPem: string; keyPem: string } {
  return { certPem: readFileSync(files.certFile, "utf8"), keyPem: readFileSync(files.keyFile, "utf8") };
}

/** Reads and checks a certificate pair; throws when the files are unreadable or do not belong together. */
function readCertificate(files: CertificateFiles, contextOptions: tls.SecureContextOptions): HostCertificate {
  return certificateFrom(files, readPems(files), contextOptions);
}

function certificateFrom(
  files: CertificateFiles,
  { certPem, keyPem }: { certPem: string; keyPem: string },
  contextOptions: tls.SecureContextOptions,
): HostCertificate {
  const { certFile, keyFile, selfSigned } = files;
  const leaf = new X509Certificate(certPem);
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new Error(`the key in ${keyFile} is not the key of the certificate in ${certFile}`);
  }
  const context = tls.createSecureContext({ cert: certPem, key: keyPem, ...contextOptions });
  return {
    context,
    certPem,
    keyPem,
    fingerprint: leaf.fingerprint256,
    certFile,
    keyFile,
    selfSigned,
    notAfter: new Date(leaf.validTo),
  };
}

/**
 * A TLS server's ALPN answer (XEP-0368) by callback rather than `ALPNProtocols`: given the list,
 * Node copies it into a new Buffer for every connection and keeps it for the connection's life,
 * a slice of its shared pool that keeps the pool's 8 KiB slab alive (about 2.3 KB of heap per
 * idle direct TLS session, measured in heap snapshots). The answers are the same: the protocol
 * when the client offers it, none when it offers no ALPN, a fatal alert when it offers only others.
 */
export function selectAlpn(protocol: string): (offer: { protocols: string[] }) => string | undefined {
  return ({ protocols }) => (protocols.includes(protocol) ? protocol : undefined);
}

/**
 * TLS channel-binding data of a connection (RFC 5929, RFC 9266), for any transport whose
 * bytes run over `socket`: undefined when the socket is not TLS or has no such binding.
 */
export function tlsChannelBinding(socket: unknown, type: string): Buffer | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  const tls13 = socket.getProtocol() === "TLSv1.3";
  if (type === "tls-exporter" && tls13)
    return socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
  if (type === "tls-server-end-point") {
    // The certificate this connection was given (its SNI name's; the one before a reload
    // for a connection made before it), not the one a new connection would get.
    const own = socket.getCertificate();
    return own && "raw" in own && own.raw ? serverEndPoint(own.raw) : undefined;
  }
  if (type === "tls-unique") {
    // RFC 5929 §3.1: the first Finished message of the handshake: the client's in a full
    // handshake, the server's own in an abbreviated (resumed) one. RFC 9266 leaves tls-unique
    // undefined for TLS 1.3 and it is not advertised there, but clients that do not read
    // XEP-0440 (slixmpp ≤ 1.8, on Python's ssl) send it anyway, computed the same way from the
    // TLS 1.3 Finished message, which is unique to the connection (it MACs the whole
    // handshake transcript). Accepting it, as ejabberd does, keeps their -PLUS login working
    // and its binding to this channel.
    return (socket.isSessionReused() ? socket.getFinished() : socket.getPeerFinished()) ?? undefined;
  }
  return undefined;
}

/** The channel-binding types to advertise (XEP-0440) on `socket`, best first; none without TLS. */
export function tlsChannelBindingTypes(socket: unknown): string[] {
  if (!(socket instanceof tls.TLSSocket)) return [];
  return socket.getProtocol() === "TLSv1.3"
    ? ["tls-exporter", "tls-server-end-point"]
    : ["tls-server-end-point", "tls-unique"];
}
