/**
 * The HT SASL mechanisms (draft-schmaus-kitten-sasl-ht) that FAST logs in with: one message
 * from the client, `authcid NUL HMAC(token, "Initiator" || cb-data)`, answered in the
 * success's additional data with `HMAC(token, "Responder" || cb-data)`. The channel-binding
 * data is that of the TLS connection: tls-exporter (-EXPR), tls-server-end-point (-ENDP), or
 * none (-NONE).
 */
import type { Clock } from "../../core/clock.js";
import { accountName } from "../../core/sasl/identity.js";
import type { SaslContext, SaslExchange, SaslMechanism, SaslResult } from "../../core/sasl/mechanism.js";
import { decodeUtf8, failure } from "../../core/sasl/result.js";
import type { AccountStore } from "../../core/storage/types.js";
import {
  type ClientTokens,
  credentialTag,
  type FastTokens,
  htProof,
  type StoredToken,
  sameProof,
} from "./tokens.js";

/** The FAST mechanisms in the server's order of preference, and their channel binding. */
export const HT_MECHANISMS = [
  { name: "HT-SHA-256-EXPR", binding: "tls-exporter" },
  { name: "HT-SHA-256-ENDP", binding: "tls-server-end-point" },
  { name: "HT-SHA-256-NONE", binding: undefined },
] as const;
export type HtMechanismName = (typeof HT_MECHANISMS)[number]["name"];

/** Longest authcid taken (RFC 4616's field limit, as PLAIN). */
const MAX_AUTHCID_BYTES = 1023;

/** What one <authenticate/> brings besides the SASL message. */
export interface HtAttempt {
  /** The client's SASL2 user-agent id: tokens belong to one client. */
  agentId: string | undefined;
  /** The <fast/> element: without it a token login is refused (XEP-0484 §4.4). */
  fast: { count: number | undefined; invalidate: boolean } | "malformed" | undefined;
  /** The token was accepted: what the stream does with it after <success/>. */
  accepted(used: UsedToken): void;
}

export interface UsedToken {
  username: string;
  tokens: ClientTokens;
  token: StoredToken;
}

export interface HtDeps {
  tokens: FastTokens;
  accounts: AccountStore;
  clock: Clock;
}

/** FAST needs TLS (XEP-0484 §7), and the channel binding its mechanism names. */
export function availableHt(
  ctx: Pick<SaslContext, "secure" | "channelBindingTypes">,
  binding: string | undefined,
): boolean {
  return ctx.secure && (binding === undefined || ctx.channelBindingTypes().includes(binding));
}

/** One HT mechanism for one attempt. */
export function htMechanism(
  spec: (typeof HT_MECHANISMS)[number],
  deps: HtDeps,
  attempt: HtAttempt,
): SaslMechanism {
  return {
    name: spec.name,
    available: (ctx) => availableHt(ctx, spec.binding),
    start: (ctx) => new HtExchange(spec.name, spec.binding, ctx, deps, attempt),
  };
}

class HtExchange implements SaslExchange {
  private done = false;

  constructor(
    private readonly name: HtMechanismName,
    private readonly binding: string | undefined,
    private readonly ctx: SaslContext,
    private readonly deps: HtDeps,
    private readonly attempt: HtAttempt,
  ) {}

  async step(response: Buffer): Promise<SaslResult> {
    if (this.done) return failure("malformed-request", "the exchange is over");
    this.done = true;
    if (!this.ctx.secure) return failure("encryption-required");
    const sep = response.indexOf(0);
    if (sep <= 0 || sep > MAX_AUTHCID_BYTES)
      return failure("malformed-request", "expected authcid NUL token hash");
    const authcid = decodeUtf8(response.subarray(0, sep));
    if (authcid === undefined) return failure("malformed-request", "authcid is not UTF-8");
    const proof = response.subarray(sep + 1);
    const local = accountName(authcid);
    if (local === undefined) return failure("not-authorized");
    // Tokens and accounts are the served domain's this stream is for.
    const username = this.ctx.accountKey(local);
    const { fast, agentId } = this.attempt;
    if (fast === "malformed")
      return failure("malformed-request", "<fast/>'s count must be a positive integer");
    if (!fast)
      return failure("not-authorized", "a token login needs <fast xmlns='urn:xmpp:fast:0'/>", username);
    if (!agentId)
      return failure("not-authorized", "a token login needs the SASL2 <user-agent id=…/>", username);
    const cbData = this.binding === undefined ? Buffer.alloc(0) : this.ctx.channelBinding(this.binding);
    if (!cbData) return failure("not-authorized", `no ${this.binding} channel binding here`, username);

    const { tokens: store, accounts, clock } = this.deps;
    let account: Awaited<ReturnType<AccountStore["get"]>>;
    let tokens: ClientTokens | undefined;
    try {
      account = await accounts.get(username);
      tokens = await store.get(username, agentId);
    } catch {
      return failure("temporary-auth-failure", undefined, username);
    }
    const refused = failure("not-authorized", "invalid or expired token", username);
    if (!tokens) return refused;
    if (!account || account.disabled || tokens.credentialTag !== credentialTag(account.credentials)) {
      // The password changed (or the account is gone or disabled) since the tokens were issued.
      await store.delete(username, agentId).catch(() => undefined);
      return refused;
    }
    const now = clock.now();
    for (const slot of ["next", "current"] as const) {
      const token = tokens[slot];
      if (!token || token.mechanism !== this.name || token.expiresAt <= now) continue;
      const key = Buffer.from(token.key, "base64");
      if (!sameProof(htProof(key, "Initiator", cbData), proof)) continue;
      if (fast.count !== undefined) {
        if (token.count !== undefined && fast.count <= token.count)
          return failure("not-authorized", "this count was used already", username);
        token.count = fast.count;
      }
      if (slot === "next") {
        // XEP-0484 §4.5: the first use of a new token voids the older one.
        tokens.current = token;
        tokens.next = undefined;
      }
      tokens.lastUsedAt = now;
      try {
        await store.put(username, tokens);
      } catch {
        return failure("temporary-auth-failure", undefined, username);
      }
      this.attempt.accepted({ username, tokens, token });
      return { kind: "success", username, data: htProof(key, "Responder", cbData) };
    }
    return refused;
  }
}
