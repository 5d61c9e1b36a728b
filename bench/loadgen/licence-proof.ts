/**
 * The licence proof step of the bench client (urn:switchboard:client-licence:0, see
 * docs/licensing-protocol.md): when the pre-authentication stream features carry a
 * <licence/> feature, the client answers with a <proof/> signed by the app's Ed25519 key
 * and waits for <success/> before SASL. Written from the wire description, independently
 * of the server's code, as a third-party client would be. Over TLS the proof binds to the
 * channel-binding type the feature names (the connection supplies the data); on a plaintext
 * stream no binding is offered and the proof ends with `none:`.
 */
import { createHmac, createPrivateKey, sign } from "node:crypto";
import { createRequire } from "node:module";
import { attr, childText } from "./scanner.js";

export const LICENCE_NS = "urn:switchboard:client-licence:0";
const PROOF_CONTEXT = "switchboard-client-licence:0";

/** What a licensed app ships: its identity and one private key (PKCS#8 PEM). */
export interface LicenceCredentials {
  clientId: string;
  version: string;
  platform: string;
  keyId: string;
  privateKeyPem: string;
  /** Keep the ticket a signed proof earns and prove with it (an HMAC) while it is valid. */
  useTickets?: boolean;
}

/** A ticket from the server's <success/> and its secret. */
interface HeldTicket {
  ticket: string;
  secret: Buffer;
  expiresAt: number;
}

/** Tickets are not used in their last minute (clocks differ). */
const TICKET_MARGIN_MS = 60_000;

function escapeAttr(v: string): string {
  return v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");
}

/** The `<licence …>…</licence>` (or self-closed) element inside a <stream:features/> text, if any. */
export function licenceFeature(features: string): { openTag: string; text: string } | undefined {
  // SASL2's <authentication/> names the licence step as an inline feature, an empty <licence/>
  // that may come before the stream feature itself: the element with content (the nonce) wins.
  let selfClosed: { openTag: string; text: string } | undefined;
  let from = 0;
  for (;;) {
    const start = features.indexOf("<licence", from);
    if (start < 0) return selfClosed;
    from = start + 1;
    const gt = features.indexOf(">", start);
    if (gt < 0) return selfClosed;
    const openTag = features.slice(start, gt + 1);
    if (!/^<licence[\s/>]/.test(openTag) || attr(openTag, "xmlns") !== LICENCE_NS) continue;
    if (openTag.endsWith("/>")) {
      selfClosed ??= { openTag, text: openTag };
      continue;
    }
    const end = features.indexOf("</licence>", gt);
    if (end < 0) return selfClosed;
    return { openTag, text: features.slice(start, end + "</licence>".length) };
  }
}

/** Channel-binding data of the connection for a type ("tls-exporter", "tls-server-end-point"), if it has it. */
export type ChannelBindingSource = (type: string) => Buffer | undefined;

/** The bytes a proof signs: the protocol's lines joined by "\n"; `binding` is "<type>:<base64>" or "none:". */
export function signedText(
  domain: string,
  streamId: string,
  nonce: string,
  c: Omit<LicenceCredentials, "privateKeyPem">,
  binding = "none:",
): string {
  return [PROOF_CONTEXT, domain, streamId, nonce, c.clientId, c.version, c.platform, c.keyId, binding].join(
    "\n",
  );
}

interface Sodium {
  crypto_sign_seed_keypair(publicKey: Buffer, secretKey: Buffer, seed: Buffer): void;
  crypto_sign_detached(signature: Buffer, message: Buffer, secretKey: Buffer): void;
}

function loadSodium(): Sodium | undefined {
  try {
    return createRequire(import.meta.url)("sodium-native") as Sodium;
  } catch {
    return undefined;
  }
}

/**
 * A signing function for the PKCS#8 PEM key: libsodium when it loads (about a third of
 * node:crypto's time), so the generator spends as little as it can on its side of the proof.
 */
function signerFor(privateKeyPem: string): (message: Buffer) => Buffer {
  const key = createPrivateKey(privateKeyPem);
  const sodium = loadSodium();
  if (!sodium) return (message) => sign(null, message, key);
  const seed = Buffer.from(key.export({ format: "jwk" }).d ?? "", "base64url");
  const publicKey = Buffer.alloc(32);
  const secretKey = Buffer.alloc(64);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return (message) => {
    const signature = Buffer.alloc(64);
    sodium.crypto_sign_detached(signature, message, secretKey);
    return signature;
  };
}

export class LicenceProver {
  private readonly sign: (message: Buffer) => Buffer;
  private held: HeldTicket | undefined;

  constructor(
    private readonly credentials: LicenceCredentials,
    private readonly domain: string,
  ) {
    this.sign = signerFor(credentials.privateKeyPem);
  }

  /**
   * The <proof/> answering the <licence/> feature of `features` (the whole <stream:features/>
   * text) on the stream whose header had id `streamId`; undefined when no licence step is offered.
   * `channelBinding` gives the TLS binding data the feature asks for.
   */
  proofFor(features: string, streamId: string, channelBinding?: ChannelBindingSource): string | undefined {
    const feature = licenceFeature(features);
    if (!feature) return undefined;
    const nonce = childText(feature.text, "nonce");
    if (!nonce) throw new Error(`<licence/> feature without a nonce: ${feature.text}`);
    let binding = "none:";
    const bindingAt = feature.text.indexOf("<channel-binding");
    if (bindingAt >= 0) {
      const type =
        attr(feature.text.slice(bindingAt, feature.text.indexOf(">", bindingAt) + 1), "type") ?? "";
      const data = channelBinding?.(type);
      if (!data)
        throw new Error(`the server asks for the ${type} channel binding, which this connection lacks`);
      binding = `${type}:${data.toString("base64")}`;
    }
    const c = this.credentials;
    const payload = Buffer.from(signedText(this.domain, streamId, nonce, c, binding), "utf8");
    const held =
      c.useTickets && this.held && Date.now() < this.held.expiresAt - TICKET_MARGIN_MS
        ? this.held
        : undefined;
    const proof = held ? createHmac("sha256", held.secret).update(payload).digest() : this.sign(payload);
    return (
      `<proof xmlns='${LICENCE_NS}' client-id='${escapeAttr(c.clientId)}' version='${escapeAttr(c.version)}'` +
      ` platform='${escapeAttr(c.platform)}' key-id='${escapeAttr(c.keyId)}'` +
      `${held ? ` ticket='${held.ticket}'` : ""}>${proof.toString("base64")}</proof>`
    );
  }

  /** Takes over the ticket another prover of the same app key holds (a client keeps its ticket across logins). */
  adoptTicket(from: LicenceProver): void {
    const same =
      from.credentials.clientId === this.credentials.clientId &&
      from.credentials.keyId === this.credentials.keyId;
    if (same && from.held) this.held = from.held;
  }

  /** Reads the server's <success/> (its whole text): keeps a ticket it carries, when tickets are used. */
  accepted(success: string): void {
    if (!this.credentials.useTickets) return;
    const at = success.indexOf("<ticket");
    if (at < 0) return;
    const openTag = success.slice(at, success.indexOf(">", at) + 1);
    const ticket = success.slice(at + openTag.length, success.indexOf("</ticket>", at));
    const secret = attr(openTag, "secret");
    const expiresAt = Date.parse(attr(openTag, "expires") ?? "");
    if (ticket && secret && Number.isFinite(expiresAt)) {
      this.held = { ticket, secret: Buffer.from(secret, "base64"), expiresAt };
    }
  }
}

/** Is this top-level element the server's acceptance of the proof (not SASL's <success/>)? */
export function isLicenceSuccess(name: string, openTag: string): boolean {
  return name === "success" && attr(openTag, "xmlns") === LICENCE_NS;
}
