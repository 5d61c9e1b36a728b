/**
 * SASL negotiation on a client stream (RFC 6120 §6): mechanism selection,
 * challenge/response framing, failure reporting and rate limiting of failed
 * attempts per address and per account. The mechanisms live in core/sasl.
 */

import { StreamError } from "../core/errors.js";
import { channelBindingFeature } from "../core/sasl/channel-binding.js";
import { claimedAccount } from "../core/sasl/identity.js";
import type { SaslContext, SaslExchange, SaslMechanism, SaslResult } from "../core/sasl/mechanism.js";
import { mechanismsFor } from "../core/sasl/mechanism.js";
import type { ScramHash } from "../core/storage/types.js";
import { type XmlElement, x } from "../core/xml/element.js";
import type { C2SConnection } from "./connection.js";
import type { C2SServices } from "./services.js";

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
/** Failed attempts on one stream before it is closed. */
const MAX_FAILURES_PER_STREAM = 5;

type FailureCondition =
  | Extract<SaslResult, { kind: "failure" }>["condition"]
  | "aborted"
  | "incorrect-encoding";

const LOCKED = "too many failed attempts for this account, try later";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decode(text: string): Buffer | undefined {
  const t = text.replace(/\s+/g, "");
  if (t === "=" || t === "") return Buffer.alloc(0);
  if (t.length % 4 !== 0 || !BASE64.test(t)) return undefined;
  return Buffer.from(t, "base64");
}

export class SaslNegotiator {
  private exchange?: SaslExchange;
  private failures = 0;
  private readonly ctx: SaslContext;

  constructor(
    private readonly svc: C2SServices,
    private readonly conn: C2SConnection,
  ) {
    this.ctx = {
      domain: svc.domain,
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
  }

  private mechanisms(): SaslMechanism[] {
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

  async handle(el: XmlElement): Promise<void> {
    switch (el.name) {
      case "auth":
        return this.start(el);
      case "response": {
        if (!this.exchange) return this.fail("malformed-request", "no authentication in progress");
        const data = decode(el.text());
        if (!data) return this.fail("incorrect-encoding");
        return this.step(data);
      }
      case "abort":
        this.exchange = undefined;
        return this.fail("aborted");
      default:
        throw new StreamError("unsupported-stanza-type", `<${el.name}/> in the SASL namespace`);
    }
  }

  private async start(el: XmlElement): Promise<void> {
    const { svc, conn } = this;
    this.exchange = undefined;
    if (svc.authFailures.byAddress.blocked(conn.remoteAddress)) {
      return this.fail(
        "temporary-auth-failure",
        "too many failed attempts from this address, try later",
        false,
      );
    }
    const name = el.attrs.mechanism ?? "";
    const mech = this.mechanisms().find((m) => m.name === name);
    if (!mech) return this.fail("invalid-mechanism", `mechanism ${name} is not offered`, false);
    const initial = decode(el.text());
    if (!initial) return this.fail("incorrect-encoding");
    await svc.hooks.fireAsync("c2s/pre-sasl", {
      session: conn,
      mechanism: name,
      claimedUsername: claimedAccount(name, initial),
    });
    if (conn.closed) return;
    this.exchange = mech.start(this.ctx);
    return this.step(initial);
  }

  private async step(data: Buffer): Promise<void> {
    const exchange = this.exchange!;
    const result = await exchange.step(data);
    if (this.conn.closed || this.exchange !== exchange) return;
    if (result.kind === "challenge") {
      this.send(x("challenge", { xmlns: NS_SASL }, result.data.toString("base64")));
      return;
    }
    this.exchange = undefined;
    if (result.kind === "failure") {
      const username = result.username;
      if (username) {
        // A locked account answers the same whatever the password, so the lock tells nothing.
        if (this.svc.authFailures.byAccount.blocked(username))
          return this.fail("temporary-auth-failure", LOCKED, false);
        this.svc.authFailures.byAccount.record(username);
      }
      return this.fail(result.condition, result.text);
    }
    const { username } = result;
    if (this.svc.authFailures.byAccount.blocked(username)) {
      return this.fail("temporary-auth-failure", LOCKED, false);
    }
    await this.svc.hooks.fireAsync("c2s/authenticated", { session: this.conn, username });
    if (this.conn.closed) return;
    this.svc.authFailures.byAccount.reset(username);
    this.send(
      x(
        "success",
        { xmlns: NS_SASL },
        result.data && result.data.length > 0 ? result.data.toString("base64") : "=",
      ),
    );
    this.svc.log.debug({ session: this.conn.id, username }, "authenticated");
    this.conn.completeAuthentication(username);
  }

  private fail(condition: FailureCondition, text?: string, countsAsFailure = true): void {
    this.exchange = undefined;
    this.send(
      x(
        "failure",
        { xmlns: NS_SASL },
        x(condition),
        text !== undefined && x("text", { "xml:lang": "en" }, text),
      ),
    );
    if (condition !== "aborted") {
      const counts = this.svc.counters.authFailures;
      counts[condition] = (counts[condition] ?? 0) + 1;
    }
    if (!countsAsFailure || condition === "aborted") return;
    this.svc.authFailures.byAddress.record(this.conn.remoteAddress);
    if (++this.failures >= MAX_FAILURES_PER_STREAM) {
      this.conn.close(new StreamError("policy-violation", "too many failed authentication attempts"));
    }
  }

  private send(el: XmlElement): void {
    this.conn.send(el);
  }
}
