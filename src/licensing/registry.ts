/**
 * The licensing registry: publishers, apps, keys, licences and the access policy,
 * stored as JSON documents in `storage.documents("licensing")`.
 *
 * Every mutation validates its input, writes one document with an atomic `update`
 * (safe against the CLI and the server writing at the same time), appends an audit
 * record with the values before and after, and then bumps the `revision` document;
 * the server polls the revision and reloads a snapshot when it changes. Nothing is
 * ever deleted: revoked keys and licences stay, with their revocation, as history.
 *
 * The pure functions at the end answer "what applies now" from a snapshot.
 */
import { createHash, randomBytes } from "node:crypto";
import { AUDIT_ARCHIVE } from "../core/audit.js";
import type { Clock } from "../core/clock.js";
import { JidError, normalizeDomain, normalizeLocal } from "../core/jid.js";
import type { ArchiveEntry, DocumentStore, Storage } from "../core/storage/types.js";
import { LicensingError } from "./errors.js";
import { KeyError, publicKeyFromInput } from "./keys.js";
import {
  type AccessPolicy,
  type Actor,
  type AppKey,
  type AppLicence,
  type AppVersionRules,
  type AuditRecord,
  type ClientApp,
  DEFAULT_POLICY,
  type DomainLicence,
  type Instant,
  type InterconnectScope,
  type Licence,
  type LicenceScope,
  type LicenceStatus,
  type PolicyMode,
  type PolicyStage,
  type Publisher,
  type VersionRange,
} from "./model.js";
import { rotateTicketKey } from "./tickets.js";
import { compareVersions, parseVersion, VersionError } from "./version.js";

export const LICENSING_STORE = "licensing";
export { AUDIT_ARCHIVE } from "../core/audit.js";

export const POLICY_MODES: readonly PolicyMode[] = ["open", "warn", "enforce"];
export const LICENCE_SCOPES: readonly LicenceScope[] = ["client", "peering", "gateway"];
export const INTERCONNECT_SCOPES: readonly InterconnectScope[] = ["peering", "gateway"];

export interface LicensingSnapshot {
  revision: number;
  publishers: Map<string, Publisher>;
  /** By clientId. */
  apps: Map<string, ClientApp>;
  /** clientId → keyId → key (revoked keys included, with revokedAt). */
  keys: Map<string, Map<string, AppKey>>;
  /** clientId → the app's licences, oldest first. */
  licences: Map<string, AppLicence[]>;
  /** Per interconnection scope: domain → its licences, oldest first. */
  domainLicences: Record<InterconnectScope, Map<string, DomainLicence[]>>;
  policy: AccessPolicy;
}

/** A snapshot of an empty registry (revision 0, the default policy). */
export function emptySnapshot(): LicensingSnapshot {
  return {
    revision: 0,
    publishers: new Map(),
    apps: new Map(),
    keys: new Map(),
    licences: new Map(),
    domainLicences: { peering: new Map(), gateway: new Map() },
    policy: clone(DEFAULT_POLICY),
  };
}

/** A licence's status at an instant: the stored one, "expired" once validUntil has passed, "pending" before validFrom. */
export type LicenceState = LicenceStatus | "pending";

export interface AuditQuery {
  kind?: string;
  kindPrefix?: string;
  /** Only records about this subject, e.g. "licence:lic_…" or "policy". */
  subject?: string;
  since?: Instant;
  until?: Instant;
  limit?: number;
  newestFirst?: boolean;
}

// --- Input validation (shared with the commands) ---

export const CLIENT_ID_SYNTAX = /^[a-z0-9][a-z0-9._-]{1,127}$/;
const KEY_ID_SYNTAX = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PLATFORM_SYNTAX = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const EMAIL_SYNTAX = /^[^\s@<>()[\],;:"]+@[^\s@<>()[\],;:"]+\.[^\s@<>()[\],;:"]+$/;
const CONTROL = /\p{Cc}/u;
const MAX_SESSIONS_LIMIT = 10_000_000;

function invalid(message: string): never {
  throw new LicensingError(message, "invalid");
}

/** A domain a peering or gateway licence is for, normalised (RFC 7622 domainpart). */
export function checkDomain(domain: string): string {
  try {
    return normalizeDomain(typeof domain === "string" ? domain.trim() : "");
  } catch (err) {
    if (err instanceof JidError) invalid(`invalid domain "${domain}": ${err.message}`);
    throw err;
  }
}

export function checkClientId(clientId: string): string {
  if (!CLIENT_ID_SYNTAX.test(clientId)) {
    invalid(
      `invalid client id "${clientId}": 2–128 characters of a-z 0-9 . _ -, starting with a letter or digit`,
    );
  }
  return clientId;
}

function checkKeyId(keyId: string): string {
  if (!KEY_ID_SYNTAX.test(keyId)) {
    invalid(
      `invalid key id "${keyId}": 1–64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit`,
    );
  }
  return keyId;
}

function checkText(what: string, value: string, max: number): string {
  const text = typeof value === "string" ? value.trim() : "";
  if (text === "") invalid(`${what} must not be empty`);
  if (text.length > max) invalid(`${what} is longer than ${max} characters`);
  if (CONTROL.test(text)) invalid(`${what} contains control characters`);
  return text;
}

export function checkEmail(email: string): string {
  const text = typeof email === "string" ? email.trim() : "";
  if (text.length > 254 || !EMAIL_SYNTAX.test(text)) invalid(`invalid email address "${email}"`);
  return text;
}

export function checkUrl(what: string, url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    invalid(`${what} is not a URL: "${url}"`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") invalid(`${what} must be an http(s) URL`);
  if (url.length > 2000) invalid(`${what} is longer than 2000 characters`);
  return url;
}

export function checkVersion(what: string, v: string): string {
  try {
    parseVersion(v);
  } catch (err) {
    if (err instanceof VersionError) invalid(`${what}: ${err.message}`);
    throw err;
  }
  return v;
}

function checkInstant(what: string, at: unknown): Instant {
  if (typeof at !== "number" || !Number.isSafeInteger(at) || at < 0) {
    invalid(`${what} must be an instant (milliseconds since the epoch)`);
  }
  return at;
}

/** An account name as exemptions store it: the normalised localpart. */
export function checkAccount(name: string): string {
  try {
    return normalizeLocal(name.trim());
  } catch (err) {
    if (err instanceof JidError) invalid(`invalid account name "${name}": ${err.message}`);
    throw err;
  }
}

function checkPlatforms(platforms: string[]): string[] {
  const out = [...new Set(platforms.map((p) => p.trim().toLowerCase()))];
  if (out.length === 0) invalid("an app needs at least one platform");
  if (out.length > 32) invalid("at most 32 platforms");
  for (const p of out) {
    if (!PLATFORM_SYNTAX.test(p)) invalid(`invalid platform "${p}": 1–32 characters of a-z 0-9 . _ -`);
  }
  return out.sort();
}

function checkVersionRules(clientId: string, rules: AppVersionRules): AppVersionRules | undefined {
  const out: AppVersionRules = {};
  const what = `policy for ${clientId}`;
  if (rules.minVersion !== undefined)
    out.minVersion = checkVersion(`${what}: minimum version`, rules.minVersion);
  if (rules.recommendedVersion !== undefined) {
    out.recommendedVersion = checkVersion(`${what}: recommended version`, rules.recommendedVersion);
    if (out.minVersion !== undefined && compareVersions(out.recommendedVersion, out.minVersion) < 0) {
      invalid(
        `${what}: recommended version ${out.recommendedVersion} is below the minimum ${out.minVersion}`,
      );
    }
  }
  if (rules.upgradeUrl !== undefined) out.upgradeUrl = checkUrl(`${what}: upgrade URL`, rules.upgradeUrl);
  if (rules.blocked !== undefined && rules.blocked.length > 0) {
    const seen = new Set<string>();
    const blocked: VersionRange[] = [];
    for (const r of rules.blocked) {
      const from = checkVersion(`${what}: blocked range`, r.from);
      const to = checkVersion(`${what}: blocked range`, r.to);
      if (compareVersions(from, to) > 0) invalid(`${what}: blocked range ${from}-${to} is reversed`);
      const key = `${from}-${to}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const range: VersionRange = { from, to };
      if (r.reason !== undefined) range.reason = checkText(`${what}: reason of ${key}`, r.reason, 500);
      blocked.push(range);
    }
    blocked.sort((a, b) => compareVersions(a.from, b.from) || compareVersions(a.to, b.to));
    out.blocked = blocked;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Validates a whole policy and returns its canonical form (stages sorted, exemptions normalised). */
export function normalisePolicy(p: AccessPolicy, knownApps: ReadonlySet<string>): AccessPolicy {
  if (!POLICY_MODES.includes(p.mode)) invalid(`invalid mode "${p.mode}": open, warn or enforce`);
  const stages: PolicyStage[] = [];
  for (const s of p.stages ?? []) {
    const at = checkInstant("stage instant", s.at);
    if (!POLICY_MODES.includes(s.mode)) invalid(`invalid stage mode "${s.mode}": open, warn or enforce`);
    const stage: PolicyStage = { at, mode: s.mode };
    if (s.percentage !== undefined) {
      if (
        typeof s.percentage !== "number" ||
        !Number.isFinite(s.percentage) ||
        s.percentage < 0 ||
        s.percentage > 100
      ) {
        invalid(`invalid stage percentage ${s.percentage}: a number from 0 to 100`);
      }
      // 100 is the default: leave it out so equal policies look the same.
      if (s.percentage !== 100) stage.percentage = s.percentage;
    }
    stages.push(stage);
  }
  stages.sort((a, b) => a.at - b.at);
  for (let i = 1; i < stages.length; i++) {
    if (stages[i]!.at === stages[i - 1]!.at) {
      invalid(`two stages at ${new Date(stages[i]!.at).toISOString()}`);
    }
  }
  const apps: Record<string, AppVersionRules> = {};
  for (const [clientId, rules] of Object.entries(p.apps ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    checkClientId(clientId);
    if (!knownApps.has(clientId)) throw new LicensingError(`no app ${clientId}`, "not-found");
    const checked = checkVersionRules(clientId, rules);
    if (checked) apps[clientId] = checked;
  }
  const out: AccessPolicy = {
    mode: p.mode,
    stages,
    apps,
    exemptions: [...new Set((p.exemptions ?? []).map(checkAccount))].sort(),
  };
  if (p.infoUrl !== undefined) out.infoUrl = checkUrl("info URL", p.infoUrl);
  if (p.upgradeUrl !== undefined) out.upgradeUrl = checkUrl("upgrade URL", p.upgradeUrl);
  return out;
}

type Doc = Publisher | ClientApp | AppKey | Licence | AccessPolicy | number;

const newId = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;
const clone = <T>(v: T): T => structuredClone(v);
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class LicensingRegistry {
  readonly #docs: DocumentStore<Doc>;
  readonly #audit;
  readonly #clock: Clock;

  readonly #storage: Storage;

  constructor(storage: Storage, clock: Clock) {
    this.#storage = storage;
    this.#docs = storage.documents<Doc>(LICENSING_STORE);
    this.#audit = storage.archive<AuditRecord>(AUDIT_ARCHIVE);
    this.#clock = clock;
  }

  async revision(): Promise<number> {
    const r = await this.#docs.get("revision");
    return typeof r === "number" ? r : 0;
  }

  /** Everything, read in one query (so the revision matches the data or is older: a reload follows). */
  async snapshot(): Promise<LicensingSnapshot> {
    const s = emptySnapshot();
    for (const { key, value } of await this.#docs.list()) {
      const kind = key.slice(0, key.indexOf(":") + 1) || key;
      switch (kind) {
        case "revision":
          s.revision = value as number;
          break;
        case "policy":
          s.policy = value as AccessPolicy;
          break;
        case "publisher:": {
          const p = value as Publisher;
          s.publishers.set(p.id, p);
          break;
        }
        case "app:": {
          const a = value as ClientApp;
          s.apps.set(a.clientId, a);
          break;
        }
        case "key:": {
          const k = value as AppKey;
          let byId = s.keys.get(k.clientId);
          if (!byId) {
            byId = new Map();
            s.keys.set(k.clientId, byId);
          }
          byId.set(k.keyId, k);
          break;
        }
        case "licence:": {
          const l = value as Licence;
          if (l.scope === "client") {
            const list = s.licences.get(l.clientId);
            if (list) list.push(l);
            else s.licences.set(l.clientId, [l]);
          } else if (INTERCONNECT_SCOPES.includes(l.scope) && typeof l.domain === "string") {
            const byDomain = s.domainLicences[l.scope];
            const list = byDomain.get(l.domain);
            if (list) list.push(l);
            else byDomain.set(l.domain, [l]);
          }
          // Anything else is a record of an earlier model (app-bound gateway licences) that admitted nothing.
          break;
        }
      }
    }
    const byAge = (a: Licence, b: Licence) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1);
    for (const list of s.licences.values()) list.sort(byAge);
    for (const scope of INTERCONNECT_SCOPES)
      for (const list of s.domainLicences[scope].values()) list.sort(byAge);
    return s;
  }

  async getPublisher(id: string): Promise<Publisher | undefined> {
    return (await this.#docs.get(`publisher:${id}`)) as Publisher | undefined;
  }

  async getApp(clientId: string): Promise<ClientApp | undefined> {
    return (await this.#docs.get(`app:${clientId}`)) as ClientApp | undefined;
  }

  async getLicence(id: string): Promise<Licence | undefined> {
    return (await this.#docs.get(`licence:${id}`)) as Licence | undefined;
  }

  async getPolicy(): Promise<AccessPolicy> {
    return ((await this.#docs.get("policy")) as AccessPolicy | undefined) ?? clone(DEFAULT_POLICY);
  }

  async addPublisher(
    actor: Actor,
    input: { organisation: string; contactEmail: string },
  ): Promise<Publisher> {
    const organisation = checkText("organisation", input.organisation, 200);
    const contactEmail = checkEmail(input.contactEmail);
    const existing = await this.#docs.list({ prefix: "publisher:" });
    const same = existing.find(
      (e) => (e.value as Publisher).organisation.toLowerCase() === organisation.toLowerCase(),
    );
    if (same)
      throw new LicensingError(
        `publisher "${organisation}" already exists (${(same.value as Publisher).id})`,
        "conflict",
      );
    const publisher: Publisher = {
      id: newId("pub"),
      organisation,
      contactEmail,
      createdAt: this.#clock.now(),
    };
    await this.#docs.update(`publisher:${publisher.id}`, (cur) => {
      if (cur !== undefined) throw new LicensingError(`publisher ${publisher.id} already exists`, "conflict");
      return publisher;
    });
    await this.#record(actor, "publisher.add", `publisher:${publisher.id}`, undefined, publisher);
    return publisher;
  }

  async registerApp(
    actor: Actor,
    input: { clientId: string; name: string; publisherId: string; platforms: string[] },
  ): Promise<ClientApp> {
    const clientId = checkClientId(input.clientId);
    const name = checkText("app name", input.name, 200);
    const platforms = checkPlatforms(input.platforms);
    if (!(await this.getPublisher(input.publisherId))) {
      throw new LicensingError(`no publisher ${input.publisherId}`, "not-found");
    }
    const app: ClientApp = {
      clientId,
      name,
      publisherId: input.publisherId,
      platforms,
      createdAt: this.#clock.now(),
    };
    await this.#docs.update(`app:${clientId}`, (cur) => {
      if (cur !== undefined) throw new LicensingError(`app ${clientId} is already registered`, "conflict");
      return app;
    });
    await this.#record(actor, "app.register", `app:${clientId}`, undefined, app);
    return app;
  }

  /** Adds a public key (base64 raw or PEM SPKI); an app may have several active keys, for rotation. */
  async addKey(actor: Actor, clientId: string, input: { keyId: string; publicKey: string }): Promise<AppKey> {
    const app = await this.#requireApp(clientId);
    const keyId = checkKeyId(input.keyId);
    let publicKey: string;
    try {
      publicKey = publicKeyFromInput(input.publicKey);
    } catch (err) {
      if (err instanceof KeyError) invalid(`invalid public key: ${err.message}`);
      throw err;
    }
    // One key, one app: a key shared between apps would let one app pass for the other.
    for (const { value } of await this.#docs.list({ prefix: "key:" })) {
      const k = value as AppKey;
      if (k.publicKey === publicKey) {
        throw new LicensingError(
          `this public key is already registered (${k.clientId} key ${k.keyId})`,
          "conflict",
        );
      }
    }
    const key: AppKey = { keyId, clientId: app.clientId, publicKey, createdAt: this.#clock.now() };
    await this.#docs.update(`key:${app.clientId}:${keyId}`, (cur) => {
      if (cur !== undefined)
        throw new LicensingError(`${app.clientId} already has a key ${keyId}`, "conflict");
      return key;
    });
    await this.#record(actor, "key.add", `key:${app.clientId}:${keyId}`, undefined, key);
    return key;
  }

  /** Marks a key revoked from now on; the key stays stored. */
  async revokeKey(actor: Actor, clientId: string, keyId: string): Promise<AppKey> {
    const app = await this.#requireApp(clientId);
    const subject = `key:${app.clientId}:${keyId}`;
    let before: AppKey | undefined;
    const now = this.#clock.now();
    const after = (await this.#docs.update(subject, (cur) => {
      if (cur === undefined) throw new LicensingError(`${app.clientId} has no key ${keyId}`, "not-found");
      before = cur as AppKey;
      if (before.revokedAt !== undefined) {
        throw new LicensingError(`key ${keyId} of ${app.clientId} is already revoked`, "conflict");
      }
      return { ...before, revokedAt: now };
    })) as AppKey;
    await this.#record(actor, "key.revoke", subject, before, after);
    return after;
  }

  /**
   * Grants a licence: to an app (scope "client", `clientId`) or to a domain (scope "peering":
   * a remote server's domain; "gateway": a component's domain). Session limits are for apps.
   */
  async grantLicence(
    actor: Actor,
    input: {
      scope?: LicenceScope;
      clientId?: string;
      domain?: string;
      /** For a domain licence: the publisher it is granted to. */
      publisherId?: string;
      validFrom?: Instant;
      validUntil?: Instant;
      maxSessions?: number;
      termsRef?: string;
    },
  ): Promise<Licence> {
    const scope = input.scope ?? "client";
    if (!LICENCE_SCOPES.includes(scope)) invalid(`invalid scope "${scope}": client, peering or gateway`);
    const now = this.#clock.now();
    const validFrom = input.validFrom === undefined ? now : checkInstant("valid-from", input.validFrom);
    const terms = { id: newId("lic"), status: "active" as const, validFrom, createdAt: now };
    let licence: Licence;
    if (scope === "client") {
      if (input.domain !== undefined)
        invalid("a client licence is for an app: give its client id, not a domain");
      if (input.publisherId !== undefined) invalid("a client licence belongs to its app's publisher");
      const app = await this.#requireApp(input.clientId ?? "");
      licence = { ...terms, scope, clientId: app.clientId };
    } else {
      if (input.clientId !== undefined) invalid(`a ${scope} licence is for a domain, not an app`);
      if (input.maxSessions !== undefined) invalid("session limits are for client licences");
      licence = { ...terms, scope, domain: checkDomain(input.domain ?? "") };
      if (input.publisherId !== undefined) {
        if (!(await this.getPublisher(input.publisherId)))
          throw new LicensingError(`no publisher ${input.publisherId}`, "not-found");
        licence.publisherId = input.publisherId;
      }
    }
    if (input.validUntil !== undefined) {
      licence.validUntil = checkInstant("valid-until", input.validUntil);
      if (licence.validUntil <= validFrom) invalid("valid-until must be after valid-from");
    }
    if (input.maxSessions !== undefined) {
      if (
        !Number.isInteger(input.maxSessions) ||
        input.maxSessions < 1 ||
        input.maxSessions > MAX_SESSIONS_LIMIT
      ) {
        invalid(`max sessions must be a whole number from 1 to ${MAX_SESSIONS_LIMIT}`);
      }
      licence.maxSessions = input.maxSessions;
    }
    if (input.termsRef !== undefined) licence.termsRef = checkText("terms reference", input.termsRef, 500);
    await this.#docs.update(`licence:${licence.id}`, (cur) => {
      if (cur !== undefined) throw new LicensingError(`licence ${licence.id} already exists`, "conflict");
      return licence;
    });
    await this.#record(actor, "licence.grant", `licence:${licence.id}`, undefined, licence);
    return licence;
  }

  /**
   * Suspends, revokes or reinstates a licence. Revocation is final (grant a new
   * licence instead); reinstating takes a suspended licence back to active.
   */
  async setLicenceStatus(actor: Actor, licenceId: string, status: Licence["status"]): Promise<Licence> {
    const kind = { active: "licence.reinstate", suspended: "licence.suspend", revoked: "licence.revoke" }[
      status
    ];
    if (kind === undefined) invalid(`invalid licence status "${status}"`);
    return this.#changeLicence(actor, kind, licenceId, (l) => {
      if (l.status === "revoked")
        throw new LicensingError(`licence ${l.id} is revoked; grant a new one`, "conflict");
      if (l.status === status) throw new LicensingError(`licence ${l.id} is already ${status}`, "conflict");
      return { ...l, status };
    });
  }

  /** Sets or removes (undefined) the end of a licence's validity. */
  async extendLicence(actor: Actor, licenceId: string, validUntil: Instant | undefined): Promise<Licence> {
    if (validUntil !== undefined) checkInstant("valid-until", validUntil);
    return this.#changeLicence(actor, "licence.extend", licenceId, (l) => {
      if (l.status === "revoked")
        throw new LicensingError(`licence ${l.id} is revoked; grant a new one`, "conflict");
      const { validUntil: _old, ...rest } = l;
      if (validUntil === undefined) return rest;
      if (validUntil <= l.validFrom) invalid("valid-until must be after valid-from");
      return { ...rest, validUntil };
    });
  }

  /**
   * Changes the policy: `change` receives a copy of the current policy and returns
   * the new one, which is validated as a whole (stages sorted, every app registered).
   */
  async setPolicy(actor: Actor, change: (p: AccessPolicy) => AccessPolicy): Promise<AccessPolicy> {
    const knownApps = new Set(
      (await this.#docs.list({ prefix: "app:" })).map((e) => (e.value as ClientApp).clientId),
    );
    let before: AccessPolicy = clone(DEFAULT_POLICY);
    const after = (await this.#docs.update("policy", (cur) => {
      before = (cur as AccessPolicy | undefined) ?? clone(DEFAULT_POLICY);
      return normalisePolicy(change(clone(before)), knownApps);
    })) as AccessPolicy;
    if (!sameJson(before, after)) await this.#record(actor, "policy.set", "policy", before, after);
    return after;
  }

  /** Replaces the licence ticket key (tickets.ts): every ticket issued so far is refused from now on. */
  async rotateTicketKey(actor: Actor): Promise<{ rotatedAt: Instant }> {
    const rotatedAt = this.#clock.now();
    await rotateTicketKey(this.#storage, rotatedAt);
    // The revision change makes running servers load the new key with the next snapshot.
    await this.#record(actor, "tickets.rotate", "ticket-key", undefined, { rotatedAt });
    return { rotatedAt };
  }

  async audit(opts: AuditQuery = {}): Promise<ArchiveEntry<AuditRecord>[]> {
    const { subject, limit, ...query } = opts;
    if (subject === undefined)
      return this.#audit.query({ ...query, ...(limit !== undefined ? { limit } : {}) });
    const matching = (await this.#audit.query(query)).filter((e) => e.data.subject === subject);
    return limit === undefined ? matching : matching.slice(0, limit);
  }

  async #requireApp(clientId: string): Promise<ClientApp> {
    checkClientId(clientId);
    const app = await this.getApp(clientId);
    if (!app) throw new LicensingError(`no app ${clientId}`, "not-found");
    return app;
  }

  async #changeLicence(
    actor: Actor,
    kind: string,
    licenceId: string,
    change: (l: Licence) => Licence,
  ): Promise<Licence> {
    const subject = `licence:${licenceId}`;
    let before: Licence | undefined;
    const after = (await this.#docs.update(subject, (cur) => {
      if (cur === undefined) throw new LicensingError(`no licence ${licenceId}`, "not-found");
      before = cur as Licence;
      return change(clone(before));
    })) as Licence;
    await this.#record(actor, kind, subject, before, after);
    return after;
  }

  /** Audit first, then the revision: a server that sees the new revision also finds the record. */
  async #record(actor: Actor, kind: string, subject: string, before: unknown, after: unknown): Promise<void> {
    const data: AuditRecord = { actor, subject };
    if (before !== undefined) data.before = before;
    if (after !== undefined) data.after = after;
    await this.#audit.append({ at: this.#clock.now(), kind, data });
    await this.#docs.update("revision", (r) => (typeof r === "number" ? r : 0) + 1);
  }
}

// --- What applies at an instant (pure) ---

export function licenceStatusAt(l: Licence, now: Instant): LicenceState {
  if (l.status !== "active") return l.status;
  if (l.validUntil !== undefined && now >= l.validUntil) return "expired";
  if (now < l.validFrom) return "pending";
  return "active";
}

/** The client-scope licence in force for an app now (the one valid the longest when several are). */
export function activeClientLicence(
  s: LicensingSnapshot,
  clientId: string,
  now: Instant,
): AppLicence | undefined {
  return longestValid(s.licences.get(clientId) ?? [], now);
}

/** Of these licences, the one in force now that is valid the longest. */
function longestValid<L extends Licence>(licences: readonly L[], now: Instant): L | undefined {
  let best: L | undefined;
  for (const l of licences) {
    if (licenceStatusAt(l, now) !== "active") continue;
    if (
      !best ||
      (best.validUntil !== undefined && (l.validUntil === undefined || l.validUntil > best.validUntil))
    ) {
      best = l;
    }
  }
  return best;
}

/**
 * The client-scope licence that explains an app's standing now: the one in force
 * when there is one, else the most recently granted (whose status says why the app
 * is refused); undefined when the app never had a client licence.
 */
export function clientLicenceStanding(
  s: LicensingSnapshot,
  clientId: string,
  now: Instant,
): { licence: AppLicence; status: LicenceState } | undefined {
  return standingOf(s.licences.get(clientId) ?? [], now);
}

/**
 * The licence of a scope that explains a domain's standing now (as clientLicenceStanding
 * does for an app): the one in force, else the most recently granted; undefined when the
 * domain never had one of that scope.
 */
export function domainLicenceStanding(
  s: LicensingSnapshot,
  scope: InterconnectScope,
  domain: string,
  now: Instant,
): { licence: DomainLicence; status: LicenceState } | undefined {
  return standingOf(s.domainLicences[scope].get(domain) ?? [], now);
}

function standingOf<L extends Licence>(
  licences: readonly L[],
  now: Instant,
): { licence: L; status: LicenceState } | undefined {
  const active = longestValid(licences, now);
  if (active) return { licence: active, status: "active" };
  const latest = licences.at(-1);
  return latest && { licence: latest, status: licenceStatusAt(latest, now) };
}

/** Every licence of the snapshot, apps' and domains', oldest first. */
export function allLicences(s: LicensingSnapshot): Licence[] {
  const out: Licence[] = [...s.licences.values()].flat();
  for (const scope of INTERCONNECT_SCOPES) out.push(...[...s.domainLicences[scope].values()].flat());
  return out.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
}

export interface EffectiveStage {
  mode: PolicyMode;
  /** Share of accounts the mode applies to (the others keep the mode they had before the stage). */
  percentage: number;
  /** The stage in force, absent before the first stage (then `mode` is the policy's base mode). */
  stage?: PolicyStage;
}

/** The latest stage at or before `now`, or the base mode. */
export function stageAt(policy: AccessPolicy, now: Instant): EffectiveStage {
  let current: PolicyStage | undefined;
  for (const s of policy.stages) if (s.at <= now && (!current || s.at >= current.at)) current = s;
  if (!current) return { mode: policy.mode, percentage: 100 };
  return { mode: current.mode, percentage: current.percentage ?? 100, stage: current };
}

/** The first stage after `now` (when the next change happens). */
export function nextStageAfter(policy: AccessPolicy, now: Instant): PolicyStage | undefined {
  let next: PolicyStage | undefined;
  for (const s of policy.stages) if (s.at > now && (!next || s.at < next.at)) next = s;
  return next;
}

/** The first enforce stage after `now`: the cutoff announced to clients. */
export function nextEnforceStage(policy: AccessPolicy, now: Instant): PolicyStage | undefined {
  let next: PolicyStage | undefined;
  for (const s of policy.stages) {
    if (s.mode === "enforce" && s.at > now && (!next || s.at < next.at)) next = s;
  }
  return next;
}

/**
 * An account's place in a rollout: a stable number 0 ≤ x < 100 from SHA-256 of the
 * localpart. A stage at p % covers the accounts with x < p, so raising the
 * percentage only ever adds accounts.
 */
export function accountBucket(username: string): number {
  const digest = createHash("sha256").update(username, "utf8").digest();
  return (digest.readUIntBE(0, 6) / 2 ** 48) * 100;
}

/**
 * The mode that applies to one account now. Stages apply in order; each changes the
 * mode of the accounts it covers and leaves the others in the mode they had, so
 * "warn" at 100 % then "enforce" at 25 % means a quarter of the accounts are refused
 * and the rest warned. Exempt accounts are always "open". Without an account (before
 * authentication) the answer is the mode of the stage in force.
 */
export function modeFor(policy: AccessPolicy, now: Instant, username: string | undefined): PolicyMode {
  if (username === undefined) return stageAt(policy, now).mode;
  const account = canonicalAccount(username);
  if (policy.exemptions.includes(account)) return "open";
  let mode = policy.mode;
  const due = policy.stages.filter((s) => s.at <= now).sort((a, b) => a.at - b.at);
  // The bucket is a hash: computed only when a partial rollout needs it (not on every login).
  const bucket = due.some((s) => (s.percentage ?? 100) < 100) ? accountBucket(account) : 0;
  for (const s of due) if (bucket < (s.percentage ?? 100)) mode = s.mode;
  return mode;
}

/** Normalises a claimed account name the way exemptions are stored; a name that cannot be normalised is kept as given. */
function canonicalAccount(username: string): string {
  try {
    return normalizeLocal(username);
  } catch {
    return username;
  }
}
