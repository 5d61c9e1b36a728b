/**
 * TLS material: the configured PEM files, or a self-signed certificate for each served
 * domain generated on first start and kept in dataDir/tls so clients can pin it.
 */
import { constants, X509Certificate } from "node:crypto";
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
  selfSigned: boolean;
  /** tls-server-end-point channel binding data (RFC 5929 §4.1), computed once. */
  serverEndPoint: Buffer;
}

/**
 * The server's certificates: the primary domain's (the fields of HostCertificate, and the
 * one a client gets without SNI or with an unknown name) and each virtual host's, chosen by
 * the client's SNI name on every TLS listener.
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
  /** tls-server-end-point data of the certificate a connection with this SNI name got. */
  serverEndPointFor(servername: string | undefined): Buffer;
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
  const primary = await loadCertificate(config.domain, config.tls, config.dataDir, contextOptions, log);
  const hosts = new Map<string, HostCertificate>([[config.domain, primary]]);
  for (const host of config.hosts) {
    if (hosts.has(host.domain)) continue;
    hosts.set(host.domain, await loadCertificate(host.domain, host.tls, config.dataDir, contextOptions, log));
  }
  const certificateFor = (servername: string | undefined): HostCertificate =>
    (servername && hosts.get(servername.toLowerCase())) || primary;
  return {
    ...primary,
    contextOptions,
    hosts,
    certificateFor,
    SNICallback: (servername, cb) => cb(null, certificateFor(servername).context),
    serverEndPointFor: (servername) => certificateFor(servername).serverEndPoint,
  };
}

/** A domain's configured PEM files, or its self-signed pair in dataDir/tls (generated on first start). */
async function loadCertificate(
  domain: string,
  files: { certFile?: string | undefined; keyFile?: string | undefined },
  dataDir: string,
  contextOptions: tls.SecureContextOptions,
  log: Logger,
): Promise<HostCertificate> {
  let certFile = files.certFile;
  let keyFile = files.keyFile;
  let selfSigned = false;
  if (!certFile || !keyFile) {
    const dir = path.join(dataDir, "tls");
    certFile = path.join(dir, `${domain}.crt`);
    keyFile = path.join(dir, `${domain}.key`);
    selfSigned = true;
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
  }
  const certPem = readFileSync(certFile, "utf8");
  const keyPem = readFileSync(keyFile, "utf8");
  const context = tls.createSecureContext({ cert: certPem, key: keyPem, ...contextOptions });
  const leaf = new X509Certificate(certPem);
  return {
    context,
    certPem,
    keyPem,
    fingerprint: leaf.fingerprint256,
    certFile,
    selfSigned,
    serverEndPoint: serverEndPoint(leaf.raw),
  };
}

/** tls-server-end-point data: of one certificate, or of the certificate an SNI name chooses. */
export type ServerEndPoint = Buffer | ((servername: string | undefined) => Buffer);

/**
 * TLS channel-binding data of a connection (RFC 5929, RFC 9266), for any transport whose
 * bytes run over `socket`: undefined when the socket is not TLS or has no such binding.
 */
export function tlsChannelBinding(
  socket: unknown,
  serverEndPoint: ServerEndPoint,
  type: string,
): Buffer | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  const tls13 = socket.getProtocol() === "TLSv1.3";
  if (type === "tls-exporter" && tls13)
    return socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
  if (type === "tls-server-end-point") {
    if (Buffer.isBuffer(serverEndPoint)) return serverEndPoint;
    // The certificate this connection got: the one its SNI name chose.
    const servername = (socket as tls.TLSSocket & { servername?: string | false }).servername;
    return serverEndPoint(typeof servername === "string" ? servername : undefined);
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
