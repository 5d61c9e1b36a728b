/**
 * SASL negotiation on a client stream: mechanism selection, the challenge/response
 * exchange, failure reporting and rate limiting of failed attempts per address and
 * per account. The exchange is the same for both profiles of SASL in XMPP; how it
 * is framed on the wire is not: RFC 6120 §6 here (`<auth/>`, then a stream restart),
 * XEP-0388 SASL2 in sasl2.ts (`<authenticate/>`, no restart). The mechanisms live in
 * core/sasl.
 */

import { StreamError } from "../errors.js";
import type { SaslRefusal } from "../events.js";
import { accountKey } from "../jid.js";
import { channelBindingFeature } from "../sasl/channel-binding.js";
import { claimedAccount } from "../sasl/identity.js";
import type { SaslContext, SaslExchange, SaslMechanism, SaslResult } from "../sasl/mechanism.js";
import { mechanismsFor } from "../sasl/mechanism.js";
import type { ScramHash } from "../storage/types.js";
import { type XmlElement, x } from "../xml/element.js";
import { NS_SASL } from "../xml/namespaces.js";
import type { ClientStream } from "./engine.js";
import type { StreamServices } from "./services.js";

/** Failed attempts on one stream before it is closed. */
const MAX_FAILURES_PER_STREAM = 5;

/** Characters of an unknown mechanism's name quoted back (registered names have at most 20). */
const QUOTED_MECHANISM_CHARS = 32;
const UNPRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/u;

/**
 * The failure text for a mechanism not offered: it quotes a short prefix of the name, without
 * the characters that do not print (controls, formatting, line separators), so a client cannot
 * have the server send back a long text of its choosing.
 */
function mechanismNotOffered(mechanism: string): string {
  if (mechanism === "") return "no mechanism named";
  let quoted = "";
  let length = 0;
  for (const c of mechanism) {
    if (UNPRINTABLE.test(c)) continue;
    if (length === QUOTED_MECHANISM_CHARS) return `mechanism ${quoted}… is not offered`;
    quoted += c;
    length++;
  }
  return quoted === "" ? "the mechanism named is not offered" : `mechanism ${quoted} is not offered`;
}

export type FailureCondition =
  | Extract<SaslResult, { kind: "failure" }>["condition"]
  | SaslRefusal["condition"]
  | "aborted"
  | "incorrect-encoding";

/** How one SASL profile puts the exchange on the wire. */
export interface SaslFraming {
  challenge(data: Buffer): XmlElement;
  /** `element`: an application element, where the profile has room for one (SASL2 only). */
  failure(condition: FailureCondition, text: string | undefined, element?: XmlElement): XmlElement;
  /** Tells the client it is authenticated, and completes the authentication of the stream. */
  succeed(username: string, additionalData: Buffer | undefined): void | Promise<void>;
}

/** RFC 6120 §6.4: the client restarts the stream after <success/>. */
function rfc6120Framing(conn: ClientStream): SaslFraming {
  return {
    challenge: (data) => x("challenge", { xmlns: NS_SASL }, data.toString("base64")),
    failure: (condition, text) =>
      x(
        "failure",
        { xmlns: NS_SASL },
        x(condition),
        text !== undefined && x("text", { "xml:lang": "en" }, text),
      ),
    succeed(username, data) {
      // No additional data (PLAIN): an empty <success/>; additional data of zero length: "=" (RFC 6120 §6.4.6).
      const additional = data === undefined ? undefined : data.length > 0 ? data.toString("base64") : "=";
      conn.send(x("success", { xmlns: NS_SASL }, additional));
      conn.completeAuthentication(username, { restart: true });
    },
  };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes base64 SASL data ("=" or nothing: empty); undefined when it is not base64. */
export function decodeSaslData(text: string): Buffer | undefined {
  const t = text.replace(/\s+/g, "");
  if (t === "=" || t === "") return Buffer.alloc(0);
  if (t.length % 4 !== 0 || !BASE64.test(t)) return undefined;
  return Buffer.from(t, "base64");
}

export class SaslNegotiator {
  private exchange?: SaslExchange;
  /** The framing of the exchange in progress (or of the last one). */
  private framing: SaslFraming;
  private readonly rfc6120: SaslFraming;
  private failures = 0;
  /** An attempt counted by the login guard is in progress. */
  private attemptOpen = false;
  private readonly ctx: SaslContext;

  constructor(
    private readonly svc: StreamServices,
    private readonly conn: ClientStream,
  ) {
    this.ctx = {
      accountKey: (local) => this.accountOf(local),
      get domain() {
        return conn.session.domain ?? svc.domain;
      },
      decoySecret: svc.saslDecoySecret,
      iterations: svc.config.scramIterations,
      getCredential: async (username: string, hash: ScramHash) => {
        const account = await svc.storage.accounts.get(username);
        if (!account || account.disabled) return undefined;
        return account.credentials.find((c) => c.hash === hash);
      },
      channelBinding: (type) => conn.channelBinding(type),
      channelBindingTypes: () => conn.channelBindingTypes(),
      get secure() {
        return conn.secure;
      },
    };
    this.rfc6120 = rfc6120Framing(conn);
    this.framing = this.rfc6120;
  }

  /** The account key of a localpart the client names, on the domain its stream is for. */
  private accountOf(local: string): string {
    return accountKey(local, this.ctx.domain, this.svc.domain);
  }

  /** The mechanisms offered on this connection, in preference order. */
  mechanisms(): SaslMechanism[] {
    return mechanismsFor(this.ctx, this.svc.config.saslMechanisms);
  }

  /** The <mechanisms/> feature and, with TLS, the XEP-0440 channel-binding types. */
  features(): XmlElement[] {
    const mechs = x("mechanisms", { xmlns: NS_SASL });
    for (const m of this.mechanisms()) mechs.c("mechanism").t(m.name);
    const out = [mechs];
    const cb = channelBindingFeature(this.ctx.channelBindingTypes());
    if (cb) out.push(cb);
    return out;
  }

  /** Handles one top-level element in the RFC 6120 SASL namespace. */
  async handle(el: XmlElement): Promise<void> {
    switch (el.name) {
      case "auth":
        return this.start(el.attrs.mechanism ?? "", el.text(), this.rfc6120);
      case "response":
        return this.respond(el.text(), this.rfc6120);
      case "abort":
        return this.abort(this.rfc6120);
      default:
        throw new StreamError("unsupported-stanza-type", `<${el.name}/> in the SASL namespace`);
    }
  }

  /** The client's answer to a challenge (base64 text), in the framing it was sent in. */
  respond(text: string, framing: SaslFraming): Promise<void> | void {
    const inProgress = this.exchange !== undefined && this.framing === framing;
    this.framing = framing;
    if (!inProgress) return this.fail("malformed-request", "no authentication in progress");
    const data = decodeSaslData(text);
    if (!data) return this.fail("incorrect-encoding");
    return this.step(data);
  }

  abort(framing: SaslFraming): void {
    this.framing = framing;
    this.fail("aborted");
  }

  /**
   * Starts an exchange with `mechanism` and the client's initial response (base64 text);
   * `extra`: mechanisms offered to this attempt only (SASL2 inline features, e.g. FAST).
   */
  async start(
    mechanism: string,
    initialText: string,
    framing: SaslFraming,
    extra: readonly SaslMechanism[] = [],
  ): Promise<void> {
    const { svc, conn } = this;
    this.endAttempt();
    this.framing = framing;
    const mech = [...this.mechanisms(), ...extra].find((m) => m.name === mechanism && m.available(this.ctx));
    if (!mech) {
      return this.fail("invalid-mechanism", mechanismNotOffered(mechanism));
    }
    const initial = decodeSaslData(initialText);
    if (!initial) return this.fail("incorrect-encoding");
    const verdict = svc.loginGuard.begin(conn.remoteAddress);
    if (verdict.refused) {
      const seconds = Math.ceil(verdict.retryAfterMs / 1000);
      return this.fail(
        "temporary-auth-failure",
        `too many failed attempts from this address, try again in ${seconds} s`,
      );
    }
    this.attemptOpen = true;
    let refusal: SaslRefusal | undefined;
    await svc.hooks.fireAsync("c2s/pre-sasl", {
      session: conn.session,
      mechanism,
      claimedUsername: mapDefined(claimedAccount(mechanism, initial), (local) => this.accountOf(local)),
      refuse: (r) => {
        refusal ??= r;
      },
    });
    if (conn.closed) return;
    if (refusal) return this.refuseLogin(refusal);
    this.exchange = mech.start(this.ctx);
    return this.step(initial);
  }

  /**
   * Fails an attempt before its mechanism started, when a SASL2 inline step refuses it
   * (e.g. an expired licence ticket): not a failed password, so not counted as one.
   */
  refuse(condition: FailureCondition, text: string, framing: SaslFraming, element?: XmlElement): void {
    this.endAttempt();
    this.framing = framing;
    this.send(framing.failure(condition, text, element));
  }

  /** The stream is gone: an attempt in progress no longer counts as one in flight. */
  dispose(): void {
    this.endAttempt();
  }

  private async step(data: Buffer): Promise<void> {
    const exchange = this.exchange!;
    const result = await exchange.step(data);
    if (this.conn.closed || this.exchange !== exchange) return;
    if (result.kind === "challenge") {
      this.send(this.framing.challenge(result.data));
      return;
    }
    this.exchange = undefined;
    const { loginGuard } = this.svc;
    const address = this.conn.remoteAddress;
    const account = result.username;
    if (result.kind === "success" || result.passwordChecked) {
      // An account under attack answers late, right or wrong, so waiting tells a guesser nothing.
      const delay = account === undefined ? 0 : loginGuard.delayMs(account, address);
      if (delay > 0) {
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        if (this.conn.closed) return;
      }
    }
    if (result.kind === "failure") {
      if (result.passwordChecked) loginGuard.failed(account, address);
      return this.fail(result.condition, result.text);
    }
    const { username } = result;
    loginGuard.succeeded(username, address);
    this.endAttempt();
    let refusal: SaslRefusal | undefined;
    await this.svc.hooks.fireAsync("c2s/authenticated", {
      session: this.conn.session,
      username,
      refuse: (r) => {
        refusal ??= r;
      },
    });
    if (this.conn.closed) return;
    if (refusal) return this.refuseLogin(refusal);
    this.svc.log.debug({ session: this.conn.session.id, username }, "authenticated");
    await this.framing.succeed(username, result.data);
  }

  /**
   * A login a hook refused (a policy, not a wrong password: the login guard does not count
   * it): the failure with its text, then the stream error when the refusal closes the stream.
   */
  private refuseLogin(refusal: SaslRefusal): void {
    this.endAttempt();
    this.send(this.framing.failure(refusal.condition, refusal.text, refusal.element));
    const counts = this.svc.counters.authFailures;
    counts[refusal.condition] = (counts[refusal.condition] ?? 0) + 1;
    if (refusal.streamError) this.conn.close(refusal.streamError);
  }

  private endAttempt(): void {
    this.exchange = undefined;
    if (!this.attemptOpen) return;
    this.attemptOpen = false;
    this.svc.loginGuard.end(this.conn.remoteAddress);
  }

  private fail(condition: FailureCondition, text?: string): void {
    this.endAttempt();
    this.send(this.framing.failure(condition, text));
    if (condition === "aborted") return;
    const counts = this.svc.counters.authFailures;
    counts[condition] = (counts[condition] ?? 0) + 1;
    if (++this.failures >= MAX_FAILURES_PER_STREAM) {
      this.conn.close(new StreamError("policy-violation", "too many failed authentication attempts"));
    }
  }

  private send(el: XmlElement): void {
    this.conn.send(el);
  }
}

export { NS_SASL } from "../xml/namespaces.js";

function mapDefined<T, U>(value: T | undefined, fn: (v: T) => U): U | undefined {
  return value === undefined ? undefined : fn(value);
}
