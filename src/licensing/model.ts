/**
 * The licensing programme's data model: publishers, their client apps, the apps'
 * signing keys, licences, and the network access policy. Everything here is
 * stored as JSON documents (Storage.documents("licensing")) and every change is
 * written to the audit log (Storage.archive("audit")).
 */

/** Milliseconds since the epoch. */
export type Instant = number;

export interface Publisher {
  /** Stable id, e.g. "pub_3f9a…". */
  id: string;
  organisation: string;
  contactEmail: string;
  createdAt: Instant;
}

export type Platform = string; // free text, normalised to lower case: "linux", "android", "ios", "web", …

export interface ClientApp {
  /** Stable, public identifier the client presents, e.g. "com.example.chat" (lower case, [a-z0-9._-]). */
  clientId: string;
  name: string;
  publisherId: string;
  platforms: Platform[];
  createdAt: Instant;
}

/** One Ed25519 public key of an app. Only public keys are ever stored. */
export interface AppKey {
  /** Unique within the app, e.g. "k1" or "android-2026". */
  keyId: string;
  clientId: string;
  /** Raw 32-byte Ed25519 public key, base64. */
  publicKey: string;
  createdAt: Instant;
  /** Set when revoked; the key is refused from this instant on. */
  revokedAt?: Instant;
}

/**
 * What a licence admits: a client app's users ("client", subject: the app's client id), a
 * remote server's domain federating with this network ("peering", subject: the remote
 * domain), or an external component's domain attaching as a gateway ("gateway", subject:
 * the component's domain).
 */
export type LicenceScope = "client" | InterconnectScope;
/** The interconnection scopes: their subject is a domain, not an app. */
export type InterconnectScope = "peering" | "gateway";
export type LicenceStatus = "active" | "suspended" | "revoked" | "expired";

/** What every licence has, whatever its subject. */
interface LicenceTerms {
  id: string;
  /** Stored status; "expired" is also derived when validUntil has passed (see licenceStatusAt). */
  status: Exclude<LicenceStatus, "expired">;
  validFrom: Instant;
  validUntil?: Instant;
  /** Most concurrent sessions using this licence (undefined: unlimited; client licences only). */
  maxSessions?: number;
  /** Reference to the agreed terms (free text or URL). */
  termsRef?: string;
  createdAt: Instant;
}

/** A licence for a client app. */
export interface AppLicence extends LicenceTerms {
  scope: "client";
  clientId: string;
}

/** A licence for a domain: a peer server (peering) or a component (gateway). */
export interface DomainLicence extends LicenceTerms {
  scope: InterconnectScope;
  /** The remote server's domain (peering) or the component's domain (gateway), normalised. */
  domain: string;
  /** The publisher it was granted to, when known (a gateway licence approved from an application). */
  publisherId?: string;
}

export type Licence = AppLicence | DomainLicence;

/** What a licence is for, as one word: the app's client id or the domain. */
export function licenceSubject(l: Licence): string {
  return l.scope === "client" ? l.clientId : l.domain;
}

export type PolicyMode = "open" | "warn" | "enforce";

/** A scheduled change of mode, optionally applied to a growing share of accounts. */
export interface PolicyStage {
  at: Instant;
  mode: PolicyMode;
  /** Share of accounts (0–100) the stage applies to, chosen by a stable hash of the account; 100 when absent. */
  percentage?: number;
}

/** Inclusive range of dotted numeric versions. */
export interface VersionRange {
  from: string;
  to: string;
  reason?: string;
}

export interface AppVersionRules {
  minVersion?: string;
  blocked?: VersionRange[];
  recommendedVersion?: string;
  upgradeUrl?: string;
}

export interface AccessPolicy {
  /** Mode before the first stage (and when there are none). */
  mode: PolicyMode;
  stages: PolicyStage[];
  /** Per app (by clientId): version rules, applied to licensed apps in every mode. */
  apps: Record<string, AppVersionRules>;
  /** Where users find licensed clients (quoted in warnings and refusals). */
  infoUrl?: string;
  /** Default upgrade URL when an app has none. */
  upgradeUrl?: string;
  /** Accounts (localparts) allowed whatever their client, for testing and support. */
  exemptions: string[];
}

export const DEFAULT_POLICY: AccessPolicy = { mode: "open", stages: [], apps: {}, exemptions: [] };

/** Who made a change: "cli:<os user>", "api:<token name>", "console:<account>". */
export type Actor = string;

/** One audit log entry (Storage.archive("audit")), kind e.g. "licence.revoke". */
export interface AuditRecord {
  actor: Actor;
  /** What was changed, e.g. "licence:lic_12" or "policy". */
  subject: string;
  before?: unknown;
  after?: unknown;
}

/** Refusal reasons, each an element name in the licensing namespace inside a policy-violation stream error. */
export type RefusalReason =
  | "unlicensed-client"
  | "unknown-key"
  | "key-revoked"
  | "licence-revoked"
  | "licence-suspended"
  | "licence-expired"
  | "version-too-old"
  | "version-blocked"
  | "too-many-sessions"
  | "bad-proof"
  /** A remote domain without a peering licence, where the policy requires one. */
  | "unlicensed-peer"
  /** A component without a gateway licence, where the policy requires one. */
  | "unlicensed-gateway";
