/**
 * Portal accounts of publishers: sign up with an email address and a password, confirm the
 * address by a mailed link, log in, reset a forgotten password by a mailed link.
 *
 * Stores: `documents("portal-accounts")` with "account:<id>" (PortalAccount) and
 * "email:<address>" (the unique index), `documents("portal-tokens")` with "token:<sha-256>".
 * Answers never tell whether an address has an account (sign-up and reset requests look the
 * same either way; the mailbox owner learns what happened by mail), and a login for an unknown
 * address costs as much as one for a known address.
 */

import type { Clock } from "../core/clock.js";
import type { DocumentStore, Storage } from "../core/storage/types.js";
import type { Instant } from "../licensing/index.js";
import { ProgrammeError } from "./errors.js";
import { isId, newId } from "./ids.js";
import {
  alreadyRegisteredMail,
  type MailContent,
  type MailContext,
  resetMail,
  verificationMail,
} from "./mail-templates.js";
import type {
  MailRef,
  OutboxMail,
  PortalAccount,
  PortalAccountView,
  TokenPurpose,
  TokenRecord,
} from "./model.js";
import type { Outbox } from "./outbox.js";
import type { PortalRateLimits, Requester } from "./rate-limits.js";
import {
  dummyPasswordHash,
  hashPassword,
  isTokenShaped,
  newToken,
  passwordProblem,
  tokenHash,
  verifyPassword,
} from "./secrets.js";
import { normaliseEmail, ValidationError } from "./validation.js";

export const ACCOUNTS_STORE = "portal-accounts";
export const TOKENS_STORE = "portal-tokens";

const HOUR = 3_600_000;
export const VERIFY_VALID_MS = 48 * HOUR;
export const RESET_VALID_MS = HOUR;

const TOKEN_FIELD = { verify: "verifyTokenHash", reset: "resetTokenHash" } as const;

/** The single-use link an account mail carries (confirmation or password reset). */
export interface MailLink {
  url: string;
  purpose: TokenPurpose;
  /** Still usable: not used, not replaced by a newer link, not expired, the account enabled. */
  valid: boolean;
}

const LINK_IN_MAIL = /(\S+\/portal\/(verify|reset)\?token=([A-Za-z0-9_-]+))/;

/** The portal link in a mail's text, without judging it. */
export function portalLinkIn(
  text: string,
): { url: string; purpose: TokenPurpose; token: string } | undefined {
  const m = LINK_IN_MAIL.exec(text);
  return m ? { url: m[1]!, purpose: m[2] as TokenPurpose, token: m[3]! } : undefined;
}

export type LoginResult =
  | { ok: true; account: PortalAccountView }
  /** invalid: unknown address or wrong password (not told apart); the others only after a correct password. */
  | { ok: false; reason: "invalid" | "unverified" | "disabled" };

export interface PortalAccountsOptions {
  storage: Storage;
  clock: Clock;
  outbox: Outbox;
  mail: MailContext;
  limits: PortalRateLimits;
}

export function accountView(a: PortalAccount): PortalAccountView {
  const { passwordHash: _p, verifyTokenHash: _v, resetTokenHash: _r, ...view } = a;
  return view;
}

const invalidLink = () => new ProgrammeError("this link is invalid or has expired", "invalid");

export class PortalAccounts {
  readonly #accounts: DocumentStore<PortalAccount>;
  readonly #emails: DocumentStore<{ accountId: string }>;
  readonly #tokens: DocumentStore<TokenRecord>;
  readonly #clock: Clock;
  readonly #outbox: Outbox;
  readonly #mail: MailContext;
  readonly #limits: PortalRateLimits;

  constructor(opts: PortalAccountsOptions) {
    this.#accounts = opts.storage.documents<PortalAccount>(ACCOUNTS_STORE);
    this.#emails = opts.storage.documents<{ accountId: string }>(ACCOUNTS_STORE);
    this.#tokens = opts.storage.documents<TokenRecord>(TOKENS_STORE);
    this.#clock = opts.clock;
    this.#outbox = opts.outbox;
    this.#mail = opts.mail;
    this.#limits = opts.limits;
  }

  async get(id: string): Promise<PortalAccountView | undefined> {
    const a = await this.#get(id);
    return a && accountView(a);
  }

  async byEmail(email: string): Promise<PortalAccountView | undefined> {
    const a = await this.#byEmail(email);
    return a && accountView(a);
  }

  /** Accounts whose address contains `search` (all when absent), oldest first. */
  async list(opts: { search?: string; limit?: number } = {}): Promise<PortalAccountView[]> {
    const needle = opts.search?.trim().toLowerCase();
    const out = (await this.#accounts.list({ prefix: "account:" }))
      .map((e) => e.value)
      .filter((a) => !needle || a.email.includes(needle))
      .map(accountView);
    return opts.limit === undefined ? out : out.slice(0, opts.limit);
  }

  /** Accounts acting for a licensing publisher. */
  async forPublisher(publisherId: string): Promise<PortalAccountView[]> {
    return (await this.list()).filter((a) => a.publisherId === publisherId);
  }

  /**
   * Creates an account and mails a confirmation link. When the address already has a
   * confirmed account, its owner gets a mail saying so instead; an unconfirmed one takes the
   * new password and gets a fresh link (whoever holds the mailbox decides). The result is
   * the new account, or undefined when the address was taken: pages must answer the same
   * either way ("check your mail").
   */
  async signUp(
    input: { email: string; password: string },
    who: Requester = {},
  ): Promise<{ account?: PortalAccountView }> {
    const email = this.#emailOf(input.email);
    const problem = passwordProblem(input.password);
    if (problem) throw new ValidationError({ password: problem });
    const requester = { ...who, email };
    this.#limits.check("signup", requester);
    this.#limits.record("signup", requester);
    const passwordHash = await hashPassword(input.password);
    const now = this.#clock.now();
    const existing = await this.#byEmail(email);
    if (existing?.emailVerified) {
      await this.#send(email, alreadyRegisteredMail(this.#mail), {
        kind: "account",
        accountId: existing.id,
        purpose: "already-registered",
      });
      return {};
    }
    if (existing) {
      await this.#accounts.update(
        `account:${existing.id}`,
        (cur) => cur && { ...cur, passwordHash, passwordChangedAt: now },
      );
      await this.#mailVerification(existing.id, email);
      return {};
    }
    const account: PortalAccount = {
      id: newId("pu", now),
      email,
      passwordHash,
      emailVerified: false,
      createdAt: now,
      passwordChangedAt: now,
    };
    let taken = false;
    await this.#emails.update(`email:${email}`, (cur) => {
      // A concurrent sign-up with the same address won the race.
      if (cur !== undefined) {
        taken = true;
        return cur;
      }
      return { accountId: account.id };
    });
    if (taken) return {};
    await this.#accounts.put(`account:${account.id}`, account);
    await this.#mailVerification(account.id, email);
    return { account: accountView(account) };
  }

  /** Sends a new confirmation link to an unconfirmed account (silently nothing otherwise). */
  async resendVerification(emailInput: string, who: Requester = {}): Promise<void> {
    const email = this.#emailOf(emailInput);
    const requester = { ...who, email };
    this.#limits.check("resend", requester);
    this.#limits.record("resend", requester);
    const account = await this.#byEmail(email);
    if (account && !account.emailVerified && !account.disabled)
      await this.#mailVerification(account.id, email);
  }

  /** The confirmation or reset link in an account mail, and whether it still works. */
  async linkOf(mail: OutboxMail): Promise<MailLink | undefined> {
    if (mail.ref?.kind !== "account") return undefined;
    const link = portalLinkIn(mail.text);
    if (!link) return undefined;
    const valid = (await this.#lookup(link.token, link.purpose)) !== undefined;
    return { url: link.url, purpose: link.purpose, valid };
  }

  /**
   * A new confirmation link for an unconfirmed account, mailed like the first (for an operator
   * whose publisher's link expired or never arrived): not rate-limited, it is an admin's act.
   */
  async reissueVerification(accountId: string): Promise<OutboxMail> {
    const account = await this.#get(accountId);
    if (!account) throw new ProgrammeError(`no portal account ${accountId}`, "not-found");
    if (account.emailVerified) throw new ProgrammeError(`${account.email} is already confirmed`, "conflict");
    if (account.disabled) throw new ProgrammeError(`${account.email} is disabled`, "conflict");
    return this.#mailVerification(account.id, account.email);
  }

  /** Confirms the address of the account the link was sent for. */
  async verifyEmail(token: string): Promise<PortalAccountView> {
    const now = this.#clock.now();
    return accountView(
      await this.#consume(token, "verify", (a) => ({
        ...a,
        emailVerified: true,
        verifiedAt: a.verifiedAt ?? now,
      })),
    );
  }

  /** Checks an email address and password (rate-limited per address and per client address). */
  async login(emailInput: string, password: string, who: Requester = {}): Promise<LoginResult> {
    let email: string;
    try {
      email = normaliseEmail(emailInput);
    } catch {
      return { ok: false, reason: "invalid" };
    }
    const requester = { ...who, email };
    this.#limits.check("login", requester);
    const account = await this.#byEmail(email);
    const hash = account?.passwordHash ?? (await dummyPasswordHash());
    const matches = await verifyPassword(String(password ?? ""), hash);
    if (!account || !matches) {
      this.#limits.record("login", requester);
      return { ok: false, reason: "invalid" };
    }
    if (account.disabled) return { ok: false, reason: "disabled" };
    if (!account.emailVerified) return { ok: false, reason: "unverified" };
    this.#limits.reset("login", { email });
    const now = this.#clock.now();
    const updated = await this.#accounts.update(
      `account:${account.id}`,
      (cur) => cur && { ...cur, lastLoginAt: now },
    );
    return { ok: true, account: accountView(updated ?? account) };
  }

  /** Mails a reset link when the address has an account; answers the same either way. */
  async requestPasswordReset(emailInput: string, who: Requester = {}): Promise<void> {
    const email = this.#emailOf(emailInput);
    const requester = { ...who, email };
    this.#limits.check("reset", requester);
    this.#limits.record("reset", requester);
    const account = await this.#byEmail(email);
    if (!account || account.disabled) return;
    const token = await this.#issueToken(account.id, "reset", RESET_VALID_MS);
    await this.#send(email, resetMail(this.#mail, token, RESET_VALID_MS / 60_000), {
      kind: "account",
      accountId: account.id,
      purpose: "reset",
    });
  }

  /** The account a reset link is for, while the link is valid (to show the form; does not use it up). */
  async checkResetToken(token: string): Promise<PortalAccountView | undefined> {
    const found = await this.#lookup(token, "reset");
    return found && accountView(found.account);
  }

  /** Sets a new password with a reset link (used up); the address counts as confirmed. */
  async resetPassword(token: string, newPassword: string): Promise<PortalAccountView> {
    const problem = passwordProblem(newPassword);
    if (problem) throw new ValidationError({ password: problem });
    if (!(await this.#lookup(token, "reset"))) throw invalidLink();
    const passwordHash = await hashPassword(newPassword);
    const now = this.#clock.now();
    const account = await this.#consume(token, "reset", (a) => ({
      ...a,
      passwordHash,
      passwordChangedAt: now,
      emailVerified: true,
      verifiedAt: a.verifiedAt ?? now,
    }));
    return accountView(account);
  }

  /** Changes the password of a logged-in account, which must give its current one. */
  async changePassword(accountId: string, current: string, next: string): Promise<PortalAccountView> {
    const account = await this.#get(accountId);
    if (!account) throw new ProgrammeError(`no portal account ${accountId}`, "not-found");
    if (!(await verifyPassword(String(current ?? ""), account.passwordHash)))
      throw new ValidationError({ currentPassword: "is not your current password" });
    const problem = passwordProblem(next);
    if (problem) throw new ValidationError({ password: problem });
    const passwordHash = await hashPassword(next);
    const now = this.#clock.now();
    const updated = await this.#accounts.update(
      `account:${accountId}`,
      (cur) => cur && { ...cur, passwordHash, passwordChangedAt: now },
    );
    return accountView(updated!);
  }

  /** Records the licensing publisher the account acts for (set by an approval). */
  async linkPublisher(accountId: string, publisherId: string): Promise<PortalAccountView> {
    const updated = await this.#accounts.update(`account:${accountId}`, (cur) => {
      if (!cur) throw new ProgrammeError(`no portal account ${accountId}`, "not-found");
      if (cur.publisherId !== undefined && cur.publisherId !== publisherId)
        throw new ProgrammeError(
          `portal account ${cur.email} already acts for publisher ${cur.publisherId}`,
          "conflict",
        );
      return { ...cur, publisherId };
    });
    return accountView(updated!);
  }

  async setDisabled(accountId: string, disabled: boolean): Promise<PortalAccountView> {
    const updated = await this.#accounts.update(`account:${accountId}`, (cur) => {
      if (!cur) throw new ProgrammeError(`no portal account ${accountId}`, "not-found");
      const { disabled: _d, ...rest } = cur;
      return disabled ? { ...rest, disabled: true } : rest;
    });
    return accountView(updated!);
  }

  /** Deletes expired tokens; returns how many. */
  async pruneTokens(now: Instant = this.#clock.now()): Promise<number> {
    let removed = 0;
    for (const { key, value } of await this.#tokens.list({ prefix: "token:" })) {
      if (value.expiresAt <= now && (await this.#tokens.delete(key))) removed++;
    }
    return removed;
  }

  #emailOf(input: string): string {
    try {
      return normaliseEmail(input);
    } catch {
      throw new ValidationError({ email: "is not a valid email address" });
    }
  }

  async #get(id: string): Promise<PortalAccount | undefined> {
    if (!isId("pu", id)) return undefined;
    return this.#accounts.get(`account:${id}`);
  }

  async #byEmail(email: string): Promise<PortalAccount | undefined> {
    let normalised: string;
    try {
      normalised = normaliseEmail(email);
    } catch {
      return undefined;
    }
    const index = await this.#emails.get(`email:${normalised}`);
    return index ? this.#accounts.get(`account:${index.accountId}`) : undefined;
  }

  async #mailVerification(accountId: string, email: string): Promise<OutboxMail> {
    const token = await this.#issueToken(accountId, "verify", VERIFY_VALID_MS);
    return this.#send(email, verificationMail(this.#mail, token, VERIFY_VALID_MS / HOUR), {
      kind: "account",
      accountId,
      purpose: "verify",
    });
  }

  #send(to: string, content: MailContent, ref: MailRef): Promise<OutboxMail> {
    return this.#outbox.enqueue({ to, ...content, ref });
  }

  /** A new single-use token for the account; it replaces the account's earlier one of that purpose. */
  async #issueToken(accountId: string, purpose: TokenPurpose, validMs: number): Promise<string> {
    const { token, hash } = newToken();
    const now = this.#clock.now();
    await this.#tokens.put(`token:${hash}`, { accountId, purpose, createdAt: now, expiresAt: now + validMs });
    const field = TOKEN_FIELD[purpose];
    let previous: string | undefined;
    await this.#accounts.update(`account:${accountId}`, (cur) => {
      if (!cur) return cur;
      previous = cur[field];
      return { ...cur, [field]: hash };
    });
    if (previous !== undefined) await this.#tokens.delete(`token:${previous}`);
    return token;
  }

  async #lookup(
    token: string,
    purpose: TokenPurpose,
  ): Promise<{ hash: string; account: PortalAccount } | undefined> {
    if (!isTokenShaped(token)) return undefined;
    const hash = tokenHash(token);
    const record = await this.#tokens.get(`token:${hash}`);
    if (!record || record.purpose !== purpose || record.expiresAt <= this.#clock.now()) return undefined;
    const account = await this.#accounts.get(`account:${record.accountId}`);
    if (!account || account.disabled || account[TOKEN_FIELD[purpose]] !== hash) return undefined;
    return { hash, account };
  }

  /** Uses up a token: applies `change` to its account in the same atomic update that removes the token. */
  async #consume(
    token: string,
    purpose: TokenPurpose,
    change: (a: PortalAccount) => PortalAccount,
  ): Promise<PortalAccount> {
    const found = await this.#lookup(token, purpose);
    if (!found) throw invalidLink();
    const field = TOKEN_FIELD[purpose];
    let used = false;
    const updated = await this.#accounts.update(`account:${found.account.id}`, (cur) => {
      // Someone used the same link a moment earlier: it is gone.
      if (!cur || cur[field] !== found.hash) return cur;
      used = true;
      const { [field]: _token, ...rest } = change(cur);
      return rest as PortalAccount;
    });
    await this.#tokens.delete(`token:${found.hash}`);
    if (!used || !updated) throw invalidLink();
    return updated;
  }
}
