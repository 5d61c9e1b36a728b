/**
 * SCRAM (RFC 5802, RFC 7677) as a server, with channel binding for the -PLUS variants (RFC 5929,
 * RFC 9266). One class serves all four mechanisms; each has its own file that names it.
 *
 * For an unknown account the exchange carries on with a decoy credential (deterministic salt, the
 * usual iteration count) and fails only at the proof, exactly where a wrong password fails.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { ScramCredential, ScramHash } from "../storage/types.js";
import { decoyCredential } from "./decoy.js";
import { accountName, isOwnBareJid } from "./identity.js";
import type { SaslContext, SaslExchange, SaslMechanism, SaslResult } from "./mechanism.js";
import { challenge, decodeUtf8, failure, wrongPassword } from "./result.js";
import { digest, digestLength, hmac, xor } from "./scram-crypto.js";
import {
  type ChannelBindingFlag,
  type ClientFirstMessage,
  formatServerFirst,
  parseClientFinal,
  parseClientFirst,
  ScramSyntaxError,
} from "./scram-messages.js";

/** Longest client message accepted; far above any legitimate one (names are at most 1023 octets). */
const MAX_MESSAGE_BYTES = 16 * 1024;
const SERVER_NONCE_BYTES = 18;

export interface ScramOptions {
  /** Makes the server's part of the nonce (printable, no ","); tests inject a fixed one to replay RFC examples. */
  serverNonce?: () => string;
  /**
   * Did the server offer a -PLUS mechanism on this connection? Decides whether a client's "y" flag is a
   * downgrade (RFC 5802 §6). Default: yes whenever the connection has channel-binding types.
   */
  plusOffered?: (ctx: SaslContext) => boolean;
}

function randomNonce(): string {
  return randomBytes(SERVER_NONCE_BYTES).toString("base64");
}

export class ScramMechanism implements SaslMechanism {
  readonly name: string;

  constructor(
    readonly hash: ScramHash,
    readonly plus: boolean,
    readonly options: ScramOptions = {},
  ) {
    this.name = `SCRAM-${hash}${plus ? "-PLUS" : ""}`;
  }

  available(ctx: SaslContext): boolean {
    return !this.plus || ctx.channelBindingTypes().length > 0;
  }

  start(ctx: SaslContext): SaslExchange {
    return new ScramExchange(this, ctx);
  }
}

type Failure = Extract<SaslResult, { kind: "failure" }>;

/** State kept between the server-first-message and the client-final-message. */
interface Pending {
  username: string;
  credential: ScramCredential;
  known: boolean;
  nonce: string;
  /** What the client's "c" attribute must decode to: gs2-header + channel-binding data. */
  expectedBinding: Buffer;
  /** client-first-message-bare "," server-first-message "," */
  authPrefix: string;
}

class ScramExchange implements SaslExchange {
  private state: "start" | "awaiting-final" | "done" = "start";
  private askedForInitial = false;
  private pending?: Pending;

  constructor(
    private readonly mech: ScramMechanism,
    private readonly ctx: SaslContext,
  ) {}

  async step(response: Buffer): Promise<SaslResult> {
    if (this.state === "done") return failure("malformed-request", "the exchange is over");
    if (this.state === "start" && response.length === 0 && !this.askedForInitial) {
      // No initial response: ask for the client-first-message with an empty challenge (RFC 6120 §6.4.2).
      this.askedForInitial = true;
      return challenge(Buffer.alloc(0));
    }
    const result = await this.advance(response);
    if (result.kind !== "challenge") {
      this.state = "done";
      this.pending = undefined;
    }
    return result;
  }

  private async advance(response: Buffer): Promise<SaslResult> {
    if (response.length > MAX_MESSAGE_BYTES) return failure("malformed-request", "message too long");
    const text = decodeUtf8(response);
    if (text === undefined) return failure("malformed-request", "message is not UTF-8");
    try {
      return this.state === "start" ? await this.first(text) : this.final(text);
    } catch (err) {
      if (err instanceof ScramSyntaxError) return failure("malformed-request", err.message);
      throw err;
    }
  }

  private async first(text: string): Promise<SaslResult> {
    const msg = parseClientFirst(text);
    const binding = this.channelBindingData(msg.flag);
    if (!Buffer.isBuffer(binding)) return binding;
    const local = accountName(msg.username);
    if (local === undefined) return failure("not-authorized");
    const username = this.ctx.accountKey(local);
    if (msg.authzid !== undefined && !isOwnBareJid(msg.authzid, local, this.ctx.domain)) {
      return failure("invalid-authzid");
    }
    let stored: ScramCredential | undefined;
    try {
      stored = await this.ctx.getCredential(username, this.mech.hash);
    } catch {
      return failure("temporary-auth-failure");
    }
    const credential =
      stored ??
      decoyCredential(username, this.mech.hash, {
        secret: this.ctx.decoySecret,
        iterations: this.ctx.iterations,
      });
    return this.serverFirst(msg, username, credential, stored !== undefined, binding);
  }

  private serverFirst(
    msg: ClientFirstMessage,
    username: string,
    credential: ScramCredential,
    known: boolean,
    binding: Buffer,
  ): SaslResult {
    const nonce = msg.nonce + (this.mech.options.serverNonce ?? randomNonce)();
    const serverFirst = formatServerFirst(nonce, credential.salt, credential.iterations);
    this.pending = {
      username,
      credential,
      known,
      nonce,
      expectedBinding: Buffer.concat([Buffer.from(msg.gs2Header, "utf8"), binding]),
      authPrefix: msg.bare + "," + serverFirst + ",",
    };
    this.state = "awaiting-final";
    return challenge(serverFirst);
  }

  /** The channel-binding data the client must prove, or the failure its GS2 flag calls for. */
  private channelBindingData(flag: ChannelBindingFlag): Buffer | Failure {
    const { ctx, mech } = this;
    if (mech.plus) {
      if (flag.kind !== "p")
        return { kind: "failure", condition: "malformed-request", text: "channel binding required" };
      // Any type the connection can compute is accepted, advertised (XEP-0440) or not: clients
      // that guess without reading the advertisement (tls-unique on TLS 1.3) still bind.
      const data = ctx.channelBinding(flag.type);
      if (!data)
        return { kind: "failure", condition: "not-authorized", text: "unsupported channel-binding type" };
      return data;
    }
    if (flag.kind === "p") {
      return {
        kind: "failure",
        condition: "malformed-request",
        text: "channel binding needs a -PLUS mechanism",
      };
    }
    const plusOffered = mech.options.plusOffered ?? ((c: SaslContext) => c.channelBindingTypes().length > 0);
    if (flag.kind === "y" && plusOffered(ctx)) {
      return { kind: "failure", condition: "not-authorized", text: "channel-binding downgrade detected" };
    }
    return Buffer.alloc(0);
  }

  private final(text: string): SaslResult {
    const p = this.pending!;
    const msg = parseClientFinal(text);
    if (!msg.channelBinding.equals(p.expectedBinding)) {
      return failure("not-authorized", "channel binding mismatch", p.username);
    }
    if (msg.nonce !== p.nonce) return failure("not-authorized", "nonce mismatch", p.username);
    const hash = this.mech.hash;
    if (msg.proof.length !== digestLength(hash)) {
      return failure("malformed-request", "proof has the wrong length", p.username);
    }
    const authMessage = p.authPrefix + msg.withoutProof;
    const { storedKey, serverKey } = p.credential;
    const clientKey = xor(msg.proof, hmac(hash, storedKey, authMessage));
    const candidate = digest(hash, clientKey);
    const proven = candidate.length === storedKey.length && timingSafeEqual(candidate, storedKey);
    if (!proven || !p.known) return wrongPassword(p.username);
    const serverSignature = hmac(hash, serverKey, authMessage);
    return {
      kind: "success",
      username: p.username,
      data: Buffer.from("v=" + serverSignature.toString("base64")),
    };
  }
}
