/**
 * tls-server-end-point channel-binding data (RFC 5929 §4.1): a hash of the server
 * certificate (DER) with the hash of the certificate's signature algorithm (for RSASSA-PSS,
 * the hash its parameters name), SHA-256 when that is MD5 or SHA-1 (or not a plain hash,
 * e.g. Ed25519). Used by
 * the server (SCRAM -PLUS, licence proofs) and by the client SDK, so both sides
 * compute the same bytes. It lives in the SDK, which depends on nothing of the server.
 */
import { createHash } from "node:crypto";

/** Signature algorithm OIDs whose hash is stronger than SHA-256 (or other than it). */
const SIGNATURE_HASH: Record<string, string> = {
  "1.2.840.113549.1.1.14": "sha224", // sha224WithRSAEncryption
  "1.2.840.113549.1.1.12": "sha384", // sha384WithRSAEncryption
  "1.2.840.113549.1.1.13": "sha512", // sha512WithRSAEncryption
  "1.2.840.10045.4.3.1": "sha224", // ecdsa-with-SHA224
  "1.2.840.10045.4.3.3": "sha384", // ecdsa-with-SHA384
  "1.2.840.10045.4.3.4": "sha512", // ecdsa-with-SHA512
};

const RSASSA_PSS = "1.2.840.113549.1.1.10";

/** Hash algorithm OIDs, as RSASSA-PSS parameters name them (RFC 4055). */
const HASH_OID: Record<string, string> = {
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

interface Tlv {
  tag: number;
  /** Offset of the value. */
  start: number;
  /** Offset just past the value. */
  end: number;
}

/** Reads one DER tag-length-value at `offset` (definite lengths only, as DER requires). */
function readTlv(der: Uint8Array, offset: number): Tlv {
  const tag = der[offset];
  let lenByte = der[offset + 1];
  if (tag === undefined || lenByte === undefined) throw new Error("truncated DER");
  let start = offset + 2;
  let len = lenByte;
  if (lenByte & 0x80) {
    const n = lenByte & 0x7f;
    if (n === 0 || n > 4) throw new Error("unsupported DER length");
    len = 0;
    for (let i = 0; i < n; i++) {
      lenByte = der[start + i];
      if (lenByte === undefined) throw new Error("truncated DER");
      len = len * 256 + lenByte;
    }
    start += n;
  }
  const end = start + len;
  if (end > der.length) throw new Error("truncated DER");
  return { tag, start, end };
}

function oidToString(bytes: Uint8Array): string {
  const first = bytes[0] ?? 0;
  const parts = [Math.floor(first / 40), first % 40];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i]!;
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** A certificate's outer signatureAlgorithm (Certificate ::= SEQUENCE { tbs, sigAlg, sig }). */
function signatureAlgorithm(der: Uint8Array): { oid: string; sigAlg: Tlv; oidTlv: Tlv } {
  const cert = readTlv(der, 0);
  const tbs = readTlv(der, cert.start);
  const sigAlg = readTlv(der, tbs.end);
  const oidTlv = readTlv(der, sigAlg.start);
  if (cert.tag !== 0x30 || tbs.tag !== 0x30 || sigAlg.tag !== 0x30 || oidTlv.tag !== 0x06) {
    throw new Error("not an X.509 certificate");
  }
  return { oid: oidToString(der.subarray(oidTlv.start, oidTlv.end)), sigAlg, oidTlv };
}

/** The OID of a certificate's outer signatureAlgorithm. */
export function certificateSignatureOid(der: Uint8Array): string {
  return signatureAlgorithm(der).oid;
}

/**
 * The hash of RSASSA-PSS parameters (RFC 4055: SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier
 * DEFAULT sha1, … }): undefined for SHA-1, the default, and for hashes not listed, which
 * RFC 5929 replaces with SHA-256.
 */
function pssHash(der: Uint8Array, sigAlg: Tlv, oidTlv: Tlv): string | undefined {
  if (oidTlv.end >= sigAlg.end) return undefined;
  const params = readTlv(der, oidTlv.end);
  if (params.tag !== 0x30 || params.start >= params.end) return undefined;
  const first = readTlv(der, params.start);
  if (first.tag !== 0xa0) return undefined;
  const algorithm = readTlv(der, first.start);
  const oid = readTlv(der, algorithm.start);
  if (algorithm.tag !== 0x30 || oid.tag !== 0x06) return undefined;
  return HASH_OID[oidToString(der.subarray(oid.start, oid.end))];
}

/** RFC 5929 §4.1 tls-server-end-point data for a certificate in DER. */
export function serverEndPoint(certDer: Uint8Array): Buffer {
  const { oid, sigAlg, oidTlv } = signatureAlgorithm(certDer);
  const named = oid === RSASSA_PSS ? pssHash(certDer, sigAlg, oidTlv) : SIGNATURE_HASH[oid];
  return createHash(named ?? "sha256")
    .update(certDer)
    .digest();
}
