/**
 * In-Band Registration (XEP-0077).
 * - Before authentication (`c2s/unauthenticated-iq`): account creation, when
 *   the server allows it (`allowRegistration`, off by default; otherwise
 *   service-unavailable as §3.1 says). Offered as the stream feature
 *   <register xmlns='http://jabber.org/features/iq-register'/> only then. A
 *   stream registers one account at most, and each address a limited number
 *   per time window. Passwords are kept only as SCRAM credentials, and are at
 *   most `maxPasswordLength` characters (here and at password change).
 * - After authentication: the account's registration (get), password change
 *   (§3.3) and account removal (§3.2: subscriptions are cancelled, the account
 *   and its data deleted, `account/deleted` fired and every session of the
 *   account closed with a not-authorized stream error after the result).
 * Errors never echo the request back, since it may carry a password (§3.3).
 */
import { z } from "zod";
import { StanzaError, StreamError } from "../../core/errors.js";
import type { IqRequest } from "../../core/iq.js";
import { Jid, JidError, normalizeLocal, tryParseJid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { maxPasswordLengthSetting, passwordLengthProblem } from "../../core/password-length.js";
import { FailureLimiter } from "../../core/rate-limit.js";
import { deriveCredentialsAsync, PasswordError } from "../../core/sasl/credentials.js";
import type { ClientSession } from "../../core/session.js";
import type { ScramCredential } from "../../core/storage/types.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_REGISTER_FEATURE } from "../../core/xml/namespaces.js";
import { isSelf } from "../roster/api.js";
import { NS_REGISTER, readSubmission, registrationForm } from "./form.js";

export default defineModule({
  name: "register",
  description: "In-band account registration, password change and account removal (XEP-0077)",
  xeps: [{ xep: "0077", version: "2.4", status: "complete" }],
  options: z.object({
    instructions: z.string().min(1).default("Choose a username and password to register with this server."),
    /** Account creations one IP address may attempt within windowSeconds (0: no limit). */
    registrationsPerAddress: z.number().int().min(0).default(5),
    windowSeconds: z.number().positive().default(3600),
    /** Longest password accepted at registration and password change (and by the admin commands), in characters. */
    maxPasswordLength: maxPasswordLengthSetting,
    allowPasswordChange: z.boolean().default(true),
    allowRemoval: z.boolean().default(true),
  }),
  setup(ctx) {
    const { storage, sessions, router, domain, config, clock } = ctx;
    const opts = ctx.options;
    // A sliding-window counter of registrations per address (the limiter counts any event, not only failures).
    const limiter =
      opts.registrationsPerAddress > 0
        ? new FailureLimiter({
            max: opts.registrationsPerAddress,
            windowMs: opts.windowSeconds * 1000,
            maxKeys: 100_000,
            now: () => clock.now(),
          })
        : undefined;

    if (config.allowRegistration) {
      ctx.addStreamFeature({
        name: "register",
        stage: "pre-auth",
        offer: () => x("register", { xmlns: NS_REGISTER_FEATURE }),
      });
    }
    if (config.allowRegistration || opts.allowPasswordChange || opts.allowRemoval)
      ctx.addFeature(NS_REGISTER, "host");

    const credentials = async (password: string): Promise<ScramCredential[]> => {
      try {
        return await deriveCredentialsAsync(password, {
          iterations: config.scramIterations,
          hashes: ["SHA-1", "SHA-256"],
        });
      } catch (err) {
        if (err instanceof PasswordError) throw new StanzaError("not-acceptable", err.message);
        throw err;
      }
    };

    /** Refuses a password longer than the bound before any key derivation is spent on it. */
    const checkPasswordLength = (password: string): void => {
      const problem = passwordLengthProblem(password, opts.maxPasswordLength);
      if (problem !== undefined) throw new StanzaError("not-acceptable", problem);
    };

    // ---- before authentication: creating an account ----

    const register = async (
      session: ClientSession,
      iq: XmlElement,
      query: XmlElement,
    ): Promise<XmlElement | undefined> => {
      if (!config.allowRegistration)
        throw new StanzaError("service-unavailable", "in-band registration is disabled");
      if (iq.attrs.type === "get") return registrationForm(opts.instructions);
      const submission = readSubmission(query);
      // §3.2 table: a remove request from an entity that is not registered (no authenticated 'from').
      if (submission.remove)
        throw new StanzaError("unexpected-request", "authenticate before removing an account");
      if (session.data.get(ctx.name) === "registered") {
        throw new StanzaError("not-acceptable", "this stream has already registered an account");
      }
      if (limiter?.blocked(session.remoteAddress)) {
        throw new StanzaError("not-acceptable", "too many registrations from this address; try again later", {
          type: "wait",
        });
      }
      const rawUsername = submission.fields.get("username") ?? "";
      const password = submission.fields.get("password") ?? "";
      if (rawUsername === "" || password === "")
        throw new StanzaError("not-acceptable", "username and password are required");
      checkPasswordLength(password);
      let local: string;
      try {
        local = normalizeLocal(rawUsername);
      } catch (err) {
        if (err instanceof JidError)
          throw new StanzaError("jid-malformed", `invalid username: ${err.message}`);
        throw err;
      }
      // The account is on the served domain the stream is for.
      const username = ctx.accountKey(Jid.trusted(local, session.domain ?? domain));
      // Checked before the (deliberately slow) key derivation; create() below settles any race.
      if (await storage.accounts.exists(username))
        throw new StanzaError("conflict", "this username is taken");
      // Counted before deriving keys, so the limit also bounds the PBKDF2 work one address can cause.
      limiter?.record(session.remoteAddress);
      if (!(await storage.accounts.create(username, await credentials(password)))) {
        throw new StanzaError("conflict", "this username is taken");
      }
      session.data.set(ctx.name, "registered");
      ctx.log.info({ username, address: session.remoteAddress }, "account registered in-band");
      await ctx.fire("account/created", { username });
      return undefined;
    };

    ctx.hook("c2s/unauthenticated-iq", async ({ session, stanza }) => {
      const query = stanza.firstElement();
      if (query?.attrs.xmlns !== NS_REGISTER) return false;
      const type = stanza.attrs.type;
      if (type === "result" || type === "error") return true; // nothing of ours waits for an answer
      const id = stanza.attrs.id;
      try {
        if (type !== "get" && type !== "set")
          throw new StanzaError("bad-request", "IQ type must be get or set");
        if (id === undefined) throw new StanzaError("bad-request", "IQ without id");
        if (stanza.elements().length !== 1 || query.name !== "query") {
          throw new StanzaError("bad-request", "expected one <query/> element");
        }
        session.send(x("iq", { type: "result", id }, await register(session, stanza, query)));
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        session.send(x("iq", { type: "error", id }, err.toElement()));
      }
      return true;
    });

    // ---- after authentication: the account's own registration ----

    /** The local account the request is about: the requester's own (forbidden for anyone else's). */
    const account = (req: IqRequest): string => {
      if (req.payload.name !== "query") throw new StanzaError("bad-request", "expected a <query/> element");
      if (!router.isLocalDomain(req.from.domain) || req.from.local === "")
        throw new StanzaError("service-unavailable");
      if (req.to.local !== "" && !isSelf(ctx.accountKey(req.to), domain, req.from)) {
        throw new StanzaError("forbidden", "only the account itself may manage its registration");
      }
      return ctx.accountKey(req.from);
    };

    ctx.handleIq({ target: "both", type: "get", xmlns: NS_REGISTER }, (req) => {
      account(req);
      return x(
        "query",
        { xmlns: NS_REGISTER },
        x("registered"),
        x("instructions", null, `You are registered as ${req.from.bareString}.`),
        x("username", null, req.from.local),
        x("password"),
      );
    });

    const changePassword = async (
      req: IqRequest,
      username: string,
      fields: Map<string, string>,
    ): Promise<void> => {
      if (!opts.allowPasswordChange) throw new StanzaError("not-allowed", "password changes are disabled");
      if (req.origin && !req.origin.secure && !config.allowPlaintext) {
        throw new StanzaError("not-authorized", "password changes need an encrypted stream");
      }
      const named = fields.get("username");
      if (named !== undefined && named !== "" && !namesAccount(named, username)) {
        throw new StanzaError("forbidden", "only the account's own password can be changed");
      }
      const password = fields.get("password") ?? "";
      // §3.3: an empty password never replaces the current one.
      if (password === "") throw new StanzaError("bad-request", "the new password is missing");
      checkPasswordLength(password);
      if (!(await storage.accounts.setCredentials(username, await credentials(password)))) {
        throw new StanzaError("item-not-found", "the account no longer exists");
      }
      ctx.log.info({ username }, "password changed in-band");
    };

    /** Does a submitted username ("alice" or "alice@domain") name this account? */
    const namesAccount = (named: string, username: string): boolean => {
      const jid = tryParseJid(named.includes("@") ? named : `${named}@${ctx.accountJid(username).domain}`);
      return jid !== undefined && jid.resource === "" && isSelf(username, domain, jid);
    };

    const removeAccount = async (req: IqRequest, username: string): Promise<void> => {
      if (!opts.allowRemoval) throw new StanzaError("not-allowed", "accounts cannot be removed in-band");
      await cancelSubscriptions(req, username);
      if (!(await storage.accounts.delete(username))) throw new StanzaError("registration-required");
      ctx.log.info({ username }, "account removed in-band");
      await ctx.fire("account/deleted", { username });
      // Once the core has sent the IQ result: it runs as a promise callback, before any setImmediate.
      setImmediate(() => {
        for (const s of sessions.resourcesOf(username))
          s.close(new StreamError("not-authorized", "account removed"));
      });
    };

    /**
     * §3.2: cancel the account's subscriptions as if its client unsubscribed from every contact, through
     * the client path so the presence and roster modules apply RFC 6121 §3.2–3.3 (unavailable presence,
     * pushes, contacts' rosters).
     */
    const cancelSubscriptions = async (req: IqRequest, username: string): Promise<void> => {
      const { origin } = req;
      const bare = req.from.bare();
      const { items } = await storage.roster.get(username);
      for (const item of items) {
        const types: string[] = [];
        if (item.subscription === "to" || item.subscription === "both" || item.ask) types.push("unsubscribe");
        if (item.subscription === "from" || item.subscription === "both") types.push("unsubscribed");
        const contact = tryParseJid(item.jid);
        if (!contact) continue;
        for (const type of types) {
          const presence = x("presence", { type, to: item.jid });
          if (origin && !origin.closed)
            await router.fromClient(origin, presence as XmlElement & { name: "presence" });
          else {
            presence.attrs.from = bare.toString();
            await router.deliver(presence, bare, contact);
          }
        }
      }
    };

    ctx.handleIq({ target: "both", type: "set", xmlns: NS_REGISTER }, async (req) => {
      try {
        const username = account(req);
        const submission = readSubmission(req.payload);
        if (submission.remove) await removeAccount(req, username);
        else await changePassword(req, username, submission.fields);
      } catch (err) {
        // The error reply must not carry the request back: it may hold a password (§3.3).
        if (err instanceof StanzaError) throw err.withoutPayload();
        throw err;
      }
    });
  },
});

export { NS_REGISTER_FEATURE } from "../../core/xml/namespaces.js";
