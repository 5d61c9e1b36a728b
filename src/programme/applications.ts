/**
 * Licence applications: a publisher's portal account submits the form; an admin reviews it
 * and approves or rejects it. Approval creates, through the licensing registry and in the
 * admin's name (audited there), the Publisher when the account has none, the ClientApp
 * (client id chosen by the admin or derived from the app's name) and the Licence (scope from
 * the application, validity and terms from the admin). The publisher is mailed either way.
 *
 * Store: `documents("applications")`, key "application:<id>" (ids sort by submission time).
 */

import { recordAudit } from "../commands/audit.js";
import type { Clock } from "../core/clock.js";
import type { DocumentStore, Storage } from "../core/storage/types.js";
import type { Actor, Instant, Licence } from "../licensing/index.js";
import {
  CLIENT_ID_SYNTAX,
  checkClientId,
  checkDomain,
  checkUrl,
  type LicensingRegistry,
} from "../licensing/index.js";
import { ProgrammeError } from "./errors.js";
import { isId, newId } from "./ids.js";
import {
  applicationApprovedMail,
  applicationReceivedMail,
  applicationRejectedMail,
  type MailContent,
  type MailContext,
} from "./mail-templates.js";
import type { Application, ApplicationForm, ApplicationScope, ApplicationStatus } from "./model.js";
import type { Outbox } from "./outbox.js";
import type { PortalAccounts } from "./portal-accounts.js";
import { cleanMultiline, emailProblem, normaliseEmail, textProblem, ValidationError } from "./validation.js";

export const APPLICATIONS_STORE = "applications";
export const APPLICATION_SCOPES: readonly ApplicationScope[] = ["client", "gateway"];
export const APPLICATION_STATUSES: readonly ApplicationStatus[] = [
  "submitted",
  "under-review",
  "approved",
  "rejected",
];

const PLATFORM_SYNTAX = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const MAX_EXPECTED_USERS = 10_000_000_000;
/** An approval that has not finished after this long is taken to have crashed. */
const APPROVAL_TIMEOUT_MS = 60_000;

function list(raw: unknown): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : [];
  return items.map((v) => String(v).trim()).filter((v) => v !== "");
}

const TRUE = new Set(["true", "on", "yes", "1"]);

/**
 * Validates the application form (as a page posts it: strings, or a JSON body) and returns
 * it in canonical form; a ValidationError names every field in error.
 */
export function parseApplicationForm(raw: Record<string, unknown>): ApplicationForm {
  const errors: Record<string, string> = {};
  const text = (field: string, max: number, multiline = false): string => {
    const problem = textProblem(raw[field], max, multiline);
    if (problem) errors[field] = problem;
    return problem ? "" : multiline ? cleanMultiline(String(raw[field])) : String(raw[field]).trim();
  };
  const organisation = text("organisation", 200);
  const contactName = text("contactName", 200);
  const appName = text("appName", 200);
  const description = text("description", 5000, true);
  const emailIssue = emailProblem(raw.contactEmail);
  if (emailIssue) errors.contactEmail = emailIssue;
  const scope = String(raw.scope ?? "") as ApplicationScope;
  if (!APPLICATION_SCOPES.includes(scope)) errors.scope = "must be client or gateway";
  let domain: string | undefined;
  if (scope === "gateway") {
    const given = typeof raw.domain === "string" ? raw.domain.trim() : "";
    if (given === "") errors.domain = "a gateway application names the gateway's domain";
    else {
      try {
        domain = checkDomain(given);
      } catch {
        errors.domain = `"${given}" is not a domain name`;
      }
    }
  }
  const platforms = [...new Set(list(raw.platforms).map((p) => p.toLowerCase()))].sort();
  // A gateway runs beside a server, not on people's devices: platforms are optional for it.
  if (platforms.length === 0 && scope !== "gateway") errors.platforms = "name at least one platform";
  else if (platforms.length > 32) errors.platforms = "at most 32 platforms";
  else {
    const bad = platforms.find((p) => !PLATFORM_SYNTAX.test(p));
    if (bad) errors.platforms = `"${bad}" is not a platform name (a-z 0-9 . _ -, at most 32 characters)`;
  }
  let website: string | undefined;
  if (typeof raw.website === "string" && raw.website.trim() !== "") {
    try {
      website = checkUrl("website", raw.website.trim());
    } catch {
      errors.website = "must be an http(s) URL";
    }
  }
  const users = typeof raw.expectedUsers === "string" ? raw.expectedUsers.trim() : raw.expectedUsers;
  const expectedUsers = typeof users === "number" ? users : users === "" ? Number.NaN : Number(users);
  if (!Number.isInteger(expectedUsers) || expectedUsers < 0 || expectedUsers > MAX_EXPECTED_USERS)
    errors.expectedUsers = "must be a whole number";
  const accepted = raw.termsAccepted === true || TRUE.has(String(raw.termsAccepted ?? "").toLowerCase());
  if (!accepted) errors.termsAccepted = "the terms must be accepted";
  if (Object.keys(errors).length > 0) throw new ValidationError(errors);
  return {
    organisation,
    contactName,
    contactEmail: normaliseEmail(String(raw.contactEmail)),
    appName,
    description,
    platforms,
    ...(website !== undefined ? { website } : {}),
    expectedUsers,
    scope,
    ...(domain !== undefined ? { domain } : {}),
    termsAccepted: true,
  };
}

/**
 * A client id from the app's name, prefixed with the website's domain reversed when there is
 * one ("Example Chat", https://www.example.com → "com.example.example-chat"), and made unique
 * with "-2", "-3", … when `taken`.
 */
export function deriveClientId(
  appName: string,
  website: string | undefined,
  taken: (id: string) => boolean,
): string {
  const slug =
    appName
      .normalize("NFKD")
      .replace(/\p{M}/gu, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "app";
  let prefix = "";
  if (website) {
    try {
      const labels = new URL(website).hostname
        .toLowerCase()
        .replace(/^www\./, "")
        .split(".")
        .filter((l) => /^[a-z0-9-]+$/.test(l));
      prefix = labels.reverse().join(".");
    } catch {
      prefix = "";
    }
  }
  let base = (prefix ? `${prefix}.${slug}` : slug).slice(0, 120).replace(/[-.]+$/, "");
  if (!CLIENT_ID_SYNTAX.test(base)) base = `app-${base}`.slice(0, 120);
  let candidate = base;
  for (let n = 2; taken(candidate); n++) candidate = `${base}-${n}`;
  return candidate;
}

export interface ApprovalTerms {
  /** The app's client id; derived from the app name when absent. */
  clientId?: string;
  /** An existing publisher to use instead of the account's own (or a new one). */
  publisherId?: string;
  validFrom?: Instant;
  validUntil?: Instant;
  maxSessions?: number;
  termsRef?: string;
}

export interface ApplicationsOptions {
  storage: Storage;
  clock: Clock;
  registry: LicensingRegistry;
  accounts: PortalAccounts;
  outbox: Outbox;
  mail: MailContext;
}

export class Applications {
  readonly #docs: DocumentStore<Application>;
  readonly #o: ApplicationsOptions;

  constructor(opts: ApplicationsOptions) {
    this.#docs = opts.storage.documents<Application>(APPLICATIONS_STORE);
    this.#o = opts;
  }

  async get(id: string): Promise<Application | undefined> {
    if (!isId("apl", id)) return undefined;
    return this.#docs.get(`application:${id}`);
  }

  async require(id: string): Promise<Application> {
    const a = await this.get(id);
    if (!a) throw new ProgrammeError(`no application ${id}`, "not-found");
    return a;
  }

  /** Applications, oldest first (the review queue's order), optionally of one status or one account. */
  async list(filter: { status?: ApplicationStatus; accountId?: string } = {}): Promise<Application[]> {
    return (await this.#docs.list({ prefix: "application:" }))
      .map((e) => e.value)
      .filter(
        (a) =>
          (filter.status === undefined || a.status === filter.status) &&
          (filter.accountId === undefined || a.accountId === filter.accountId),
      );
  }

  /** A confirmed portal account submits the form (raw as posted; validated here). */
  async submit(accountId: string, raw: Record<string, unknown>): Promise<Application> {
    const account = await this.#o.accounts.get(accountId);
    if (!account) throw new ProgrammeError(`no portal account ${accountId}`, "not-found");
    if (!account.emailVerified)
      throw new ProgrammeError("confirm your email address before applying", "conflict");
    if (account.disabled) throw new ProgrammeError("this portal account is disabled", "conflict");
    const form = parseApplicationForm(raw);
    const now = this.#o.clock.now();
    const application: Application = {
      ...form,
      id: newId("apl", now),
      accountId,
      status: "submitted",
      submittedAt: now,
      updatedAt: now,
      history: [{ at: now, actor: `portal:${accountId}`, status: "submitted" }],
    };
    await this.#docs.put(`application:${application.id}`, application);
    await this.#mail(
      account.email,
      applicationReceivedMail(this.#o.mail, application),
      application,
      "submitted",
    );
    return application;
  }

  /** An admin takes a submitted application into review. */
  async startReview(id: string, actor: Actor): Promise<Application> {
    const now = this.#o.clock.now();
    let changed = false;
    const application = await this.#change(id, (a) => {
      if (a.status === "under-review") return a;
      changed = true;
      if (a.status !== "submitted")
        throw new ProgrammeError(`application ${id} is already ${a.status}`, "conflict");
      return {
        ...a,
        status: "under-review",
        updatedAt: now,
        history: [...a.history, { at: now, actor, status: "under-review" }],
      };
    });
    if (changed) await this.#audit("application.review", actor, application, { status: "submitted" });
    return application;
  }

  async approve(
    id: string,
    actor: Actor,
    terms: ApprovalTerms = {},
  ): Promise<{ application: Application; licence: Licence }> {
    const { registry, clock } = this.#o;
    const now = clock.now();
    const validFrom = terms.validFrom ?? now;
    if (terms.validUntil !== undefined && terms.validUntil <= validFrom)
      throw new ProgrammeError("valid-until must be after valid-from", "invalid");
    if (terms.maxSessions !== undefined && (!Number.isInteger(terms.maxSessions) || terms.maxSessions < 1))
      throw new ProgrammeError("max sessions must be a whole number of at least 1", "invalid");
    if (terms.termsRef !== undefined && textProblem(terms.termsRef, 500))
      throw new ProgrammeError(`terms reference ${textProblem(terms.termsRef, 500)}`, "invalid");
    if (terms.clientId !== undefined) checkClientId(terms.clientId);
    const pending = await this.require(id);
    if (pending.scope === "gateway") {
      if (terms.clientId !== undefined)
        throw new ProgrammeError(
          "a gateway licence is for the gateway's domain: it has no client id",
          "invalid",
        );
      if (terms.maxSessions !== undefined)
        throw new ProgrammeError("session limits are for client licences", "invalid");
    } else if (terms.clientId !== undefined) {
      // A client id another app holds is refused before anything is created or linked
      // (a publisher, the account's link to it), so a refused approval changes nothing.
      const taken = await registry.getApp(terms.clientId);
      const owner =
        terms.publisherId ??
        (await this.#o.accounts.get(pending.accountId))?.publisherId ??
        pending.publisherId;
      // Only an earlier attempt of this very approval may have registered it.
      const ours = pending.clientId === terms.clientId && owner !== undefined && taken?.publisherId === owner;
      if (taken && !ours)
        throw new ProgrammeError(`client id ${terms.clientId} is already registered`, "conflict");
    }

    // Claim the application, so a second click on "approve" cannot create a second app.
    let application = await this.#change(id, (a) => {
      if (a.status === "approved" || a.status === "rejected")
        throw new ProgrammeError(`application ${id} is already ${a.status}`, "conflict");
      if (a.approvingSince !== undefined && now - a.approvingSince < APPROVAL_TIMEOUT_MS)
        throw new ProgrammeError(`application ${id} is being approved`, "conflict");
      return { ...a, approvingSince: now };
    });
    try {
      const account = await this.#o.accounts.get(application.accountId);
      let publisherId = terms.publisherId ?? account?.publisherId ?? application.publisherId;
      if (publisherId !== undefined) {
        if (!(await registry.getPublisher(publisherId)))
          throw new ProgrammeError(`no publisher ${publisherId}`, "not-found");
      } else {
        publisherId = (
          await registry.addPublisher(actor, {
            organisation: application.organisation,
            contactEmail: application.contactEmail,
          })
        ).id;
      }
      if (account && account.publisherId !== publisherId)
        await this.#o.accounts.linkPublisher(account.id, publisherId);
      application = await this.#change(id, (a) => ({ ...a, publisherId }));

      const licence =
        application.scope === "gateway"
          ? await registry.grantLicence(actor, {
              scope: "gateway",
              domain: application.domain!,
              publisherId,
              validFrom,
              ...(terms.validUntil !== undefined ? { validUntil: terms.validUntil } : {}),
              ...(terms.termsRef !== undefined ? { termsRef: terms.termsRef.trim() } : {}),
            })
          : await this.#grantAppLicence(application, publisherId, actor, validFrom, terms);
      application = (await this.get(id))!;
      const decidedAt = clock.now();
      application = await this.#change(id, (a) => {
        const { approvingSince: _claim, ...rest } = a;
        return {
          ...rest,
          status: "approved",
          licenceId: licence.id,
          decidedAt,
          decidedBy: actor,
          updatedAt: decidedAt,
          history: [...a.history, { at: decidedAt, actor, status: "approved" }],
        };
      });
      await this.#audit(
        "application.approve",
        actor,
        application,
        { status: "under-review" },
        {
          ...(application.clientId !== undefined ? { clientId: application.clientId } : {}),
          ...(application.domain !== undefined ? { domain: application.domain } : {}),
          publisherId: application.publisherId,
          licenceId: licence.id,
        },
      );
      await this.#mail(
        account?.email ?? application.contactEmail,
        applicationApprovedMail(this.#o.mail, application, licence),
        application,
        "approved",
      );
      return { application, licence };
    } catch (err) {
      await this.#change(id, (a) => {
        const { approvingSince: _claim, ...rest } = a;
        return rest;
      }).catch(() => undefined);
      throw err;
    }
  }

  /** Registers the app of a client application (unless an earlier attempt did) and grants its licence. */
  async #grantAppLicence(
    application: Application,
    publisherId: string,
    actor: Actor,
    validFrom: Instant,
    terms: ApprovalTerms,
  ): Promise<Licence> {
    const { registry } = this.#o;
    // An earlier approval that failed after registering the app left its client id here.
    let clientId = application.clientId;
    const existing = clientId !== undefined ? await registry.getApp(clientId) : undefined;
    if (
      !existing ||
      existing.publisherId !== publisherId ||
      (terms.clientId && terms.clientId !== clientId)
    ) {
      const apps = (await registry.snapshot()).apps;
      if (terms.clientId !== undefined && apps.has(terms.clientId))
        throw new ProgrammeError(`client id ${terms.clientId} is already registered`, "conflict");
      clientId =
        terms.clientId ?? deriveClientId(application.appName, application.website, (c) => apps.has(c));
      await registry.registerApp(actor, {
        clientId,
        name: application.appName,
        publisherId,
        platforms: application.platforms,
      });
      application = await this.#change(application.id, (a) => ({ ...a, clientId }));
    }
    return registry.grantLicence(actor, {
      clientId: clientId!,
      scope: "client",
      validFrom,
      ...(terms.validUntil !== undefined ? { validUntil: terms.validUntil } : {}),
      ...(terms.maxSessions !== undefined ? { maxSessions: terms.maxSessions } : {}),
      ...(terms.termsRef !== undefined ? { termsRef: terms.termsRef.trim() } : {}),
    });
  }

  async reject(id: string, actor: Actor, reason: string): Promise<Application> {
    const problem = textProblem(reason, 5000, true);
    if (problem) throw new ValidationError({ reason: problem });
    const now = this.#o.clock.now();
    const application = await this.#change(id, (a) => {
      if (a.status === "approved" || a.status === "rejected")
        throw new ProgrammeError(`application ${id} is already ${a.status}`, "conflict");
      if (a.approvingSince !== undefined && now - a.approvingSince < APPROVAL_TIMEOUT_MS)
        throw new ProgrammeError(`application ${id} is being approved`, "conflict");
      const { approvingSince: _claim, ...rest } = a;
      return {
        ...rest,
        status: "rejected",
        rejectionReason: cleanMultiline(reason),
        decidedAt: now,
        decidedBy: actor,
        updatedAt: now,
        history: [...a.history, { at: now, actor, status: "rejected", note: cleanMultiline(reason) }],
      };
    });
    await this.#audit("application.reject", actor, application, undefined, {
      reason: application.rejectionReason,
    });
    const account = await this.#o.accounts.get(application.accountId);
    await this.#mail(
      account?.email ?? application.contactEmail,
      applicationRejectedMail(this.#o.mail, application),
      application,
      "rejected",
    );
    return application;
  }

  /** The decision in the audit log: the status before and after, and what it produced. */
  async #audit(
    kind: string,
    actor: Actor,
    a: Application,
    before: Record<string, unknown> | undefined,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await recordAudit(this.#o.storage, this.#o.clock, kind, {
      actor,
      subject: `application:${a.id}`,
      ...(before ? { before } : {}),
      after: { status: a.status, app: a.appName, organisation: a.organisation, ...extra },
    });
  }

  async #change(id: string, fn: (a: Application) => Application): Promise<Application> {
    if (!isId("apl", id)) throw new ProgrammeError(`no application ${id}`, "not-found");
    const updated = await this.#docs.update(`application:${id}`, (cur) => {
      if (!cur) throw new ProgrammeError(`no application ${id}`, "not-found");
      return fn(cur);
    });
    return updated!;
  }

  async #mail(to: string, content: MailContent, a: Application, event: ApplicationStatus): Promise<void> {
    await this.#o.outbox.enqueue({
      to,
      ...content,
      ref: { kind: "application", applicationId: a.id, event },
    });
  }
}
