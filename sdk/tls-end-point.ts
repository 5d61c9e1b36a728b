/**
 * tls-server-end-point channel-binding data (RFC 5929 §4.1): a hash of the server
 * certificate (DER) with the hash of the certificate's signature algorithm,
 * SHA-256 when that is MD5 or SHA-1 (or not a plain hash, e.g. Ed25519). Used by
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

/** The OID of a certificate's outer signatureAlgorithm (Certificate ::= SEQUENCE { tbs, sigAlg, sig }). */
export function certificateSignatureOid(der: Uint8Array): string {
  const cert = readTlv(der, 0);
  const tbs = readTlv(der, cert.start);
  const sigAlg = readTlv(der, tbs.end);
  const oid = readTlv(der, sigAlg.start);
  if (cert.tag !== 0x30 || tbs.tag !== 0x30 || sigAlg.tag !== 0x30 || oid.tag !== 0x06) {
    throw new Error("not an X.509 certificate");
  }
  return oidToString(der.subarray(oid.start, oid.end));
}

/** RFC 5929 §4.1 tls-server-end-point data for a certificate in DER. */
export function serverEndPoint(certDer: Uint8Array): Buffer {
  const hash = SIGNATURE_HASH[certificateSignatureOid(certDer)] ?? "sha256";
  return createHash(hash).update(certDer).digest();
}
