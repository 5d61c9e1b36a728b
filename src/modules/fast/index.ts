/**
 * XEP-0484 Fast Authentication Streamlining Tokens: a client that logged in with its password
 * over SASL2 asks for a token (`<request-token/>` in its <authenticate/>) and gets it in the
 * <success/>; later it logs in with the token alone, in one round trip, with an HT mechanism
 * (mechanism.ts), its <authenticate/> carrying `<fast/>`.
 *
 * - Tokens belong to an account and a client (its SASL2 user-agent id), are bound to the
 *   mechanism they were requested for, expire after `tokenLifetimeSeconds`, and are stored
 *   hashed (tokens.ts). A new password voids them (they carry a tag of the credentials
 *   they were issued under), as do deleting or disabling the account.
 * - Rotation: a login with a token that expires within `rotateBeforeExpirySeconds`, or one
 *   that asks with `<request-token/>`, gets a new token; the old one stays valid until the
 *   new one is first used (XEP-0484 §4.5). `<fast invalidate='true'/>` logs the client out.
 * - `count` on `<fast/>` must grow with every login with a token: a replayed one is refused.
 * - Everything the stream does before and after the mechanism applies as to any login
 *   (the licence proof and policy, the login guard, Bind 2, resumption): FAST only adds
 *   mechanisms to SASL2 (`Sasl2Inline.mechanisms`).
 */
import { z } from "zod";
import { defineModule } from "../../core/module.js";
import type { ClientSession } from "../../core/session.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_FAST } from "../../core/xml/namespaces.js";
import { fastCommands } from "./commands.js";
import { availableHt, HT_MECHANISMS, htMechanism, type UsedToken } from "./mechanism.js";
import { type ClientTokens, credentialTag, FAST_STORE, FastTokens, newToken } from "./tokens.js";

export const FastOptions = z.object({
  /** How long a token is valid (default 21 days). */
  tokenLifetimeSeconds: z.number().int().min(60).max(31_536_000).default(1_814_400),
  /** A login with a token that expires sooner than this gets a new one (default 7 days; 0: never). */
  rotateBeforeExpirySeconds: z.number().int().min(0).max(31_536_000).default(604_800),
});
export type FastOptions = z.infer<typeof FastOptions>;

/** What one <authenticate/> asked of FAST. */
interface Attempt {
  fast: { count: number | undefined; invalidate: boolean } | "malformed" | undefined;
  /** The mechanism a `<request-token/>` named. */
  requestToken: string | undefined;
  /** The token the mechanism accepted. */
  used: UsedToken | undefined;
}

/** XEP-0082 date-time without fractions, UTC. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function fastOf(el: XmlElement | undefined): Attempt["fast"] {
  if (!el) return undefined;
  const invalidate = el.attrs.invalidate === "true" || el.attrs.invalidate === "1";
  const raw = el.attrs.count;
  if (raw === undefined) return { count: undefined, invalidate };
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) return "malformed";
  return { count: Number(raw), invalidate };
}

export default defineModule({
  name: "fast",
  description: "Token logins in one round trip over SASL2 (XEP-0484 FAST, HT-SHA-256 mechanisms)",
  xeps: [
    {
      xep: "0484",
      version: "0.2.0",
      status: "complete",
      notes: "HT-SHA-256-EXPR, -ENDP and -NONE; no TLS 0-RTT",
    },
  ],
  options: FastOptions,
  commands: fastCommands,
  setup(ctx) {
    const { options, clock, log } = ctx;
    const tokens = new FastTokens(ctx.storage.keyValue(FAST_STORE));
    const attempts = ctx.sessionState<Attempt>();
    const deps = { tokens, accounts: ctx.storage.accounts, clock };
    const stats = { issued: 0, logins: 0, invalidated: 0 };

    const offered = (session: ClientSession) =>
      HT_MECHANISMS.filter((m) => availableHt(session, m.binding)).map((m) => m.name);

    ctx.addStreamFeature({
      name: "fast",
      stage: "pre-auth",
      // Only inside SASL2's <authentication/>.
      offer: () => undefined,
      namespaces: [NS_FAST],
      sasl2: {
        offer(session) {
          const names = offered(session);
          if (names.length === 0) return undefined;
          return x("fast", { xmlns: NS_FAST }, ...names.map((n) => x("mechanism", {}, n)));
        },
        mechanisms(session, request) {
          const attempt: Attempt = {
            fast: fastOf(request.getChild("fast", NS_FAST)),
            requestToken: request.getChild("request-token", NS_FAST)?.attrs.mechanism,
            used: undefined,
          };
          attempts.set(session, attempt);
          return HT_MECHANISMS.map((spec) =>
            htMechanism(spec, deps, {
              agentId: session.userAgent?.id,
              fast: attempt.fast,
              accepted: (used) => {
                attempt.used = used;
              },
            }),
          );
        },
        // Once authentication fully succeeded (licence policy included): invalidation, then a new token.
        async authenticated(session) {
          const attempt = attempts.get(session);
          if (!attempt) return undefined;
          attempts.delete(session);
          const answer = await conclude(session, attempt);
          return answer ? { answer } : undefined;
        },
      },
    });

    async function conclude(session: ClientSession, attempt: Attempt): Promise<XmlElement | undefined> {
      const username = session.username;
      if (!username) return undefined;
      const { used, fast } = attempt;
      const invalidate = used !== undefined && typeof fast === "object" && fast.invalidate;
      if (used) stats.logins++;
      if (invalidate) {
        await tokens.delete(username, used.tokens.agentId);
        stats.invalidated++;
        log.debug({ session: session.id, username }, "FAST token invalidated by its client");
      }
      if (attempt.requestToken !== undefined) {
        if (!offered(session).includes(attempt.requestToken as (typeof HT_MECHANISMS)[number]["name"]))
          return undefined;
        return issue(session, username, attempt.requestToken);
      }
      if (
        used &&
        !invalidate &&
        used.token.expiresAt - clock.now() <= options.rotateBeforeExpirySeconds * 1000
      )
        return issue(session, username, used.token.mechanism);
      return undefined;
    }

    /** A new token in the client's `next` slot (replacing one never used), as the <token/> to answer. */
    async function issue(session: ClientSession, username: string, mechanism: string) {
      const agent = session.userAgent;
      // XEP-0484 §5: tokens are per client; a client that does not say which it is gets none.
      if (!agent?.id) return undefined;
      const account = await ctx.storage.accounts.get(username);
      if (!account || account.disabled) return undefined;
      const tag = credentialTag(account.credentials);
      const existing = await tokens.get(username, agent.id);
      const record: ClientTokens =
        existing && existing.credentialTag === tag ? existing : { agentId: agent.id, credentialTag: tag };
      record.software = agent.software;
      record.device = agent.device;
      const { token, key } = newToken();
      const now = clock.now();
      const expiresAt = now + options.tokenLifetimeSeconds * 1000;
      record.next = { key: key.toString("base64"), mechanism, issuedAt: now, expiresAt };
      await tokens.put(username, record);
      stats.issued++;
      return x("token", { xmlns: NS_FAST, token, expiry: stamp(expiresAt) });
    }

    ctx.metric({
      name: "switchboard_fast_tokens_issued_total",
      help: "FAST tokens issued (XEP-0484), at a client's request or by rotation",
      type: "counter",
      collect: () => stats.issued,
    });
    ctx.metric({
      name: "switchboard_fast_logins_total",
      help: "Logins with a FAST token",
      type: "counter",
      collect: () => stats.logins,
    });
    ctx.metric({
      name: "switchboard_fast_tokens_invalidated_total",
      help: "FAST tokens invalidated by their client",
      type: "counter",
      collect: () => stats.invalidated,
    });
  },
});
