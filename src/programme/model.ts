/**
 * The licensing programme's own records, beside the licensing registry: portal accounts of
 * publishers, licence applications, notices with per-publisher delivery and acknowledgement,
 * and the outbox of mails. All are JSON documents in storage (see each service for its store).
 */
import type { Instant } from "../licensing/index.js";

/** A publisher's user of the web portal. */
export interface PortalAccount {
  /** "pu_…" */
  id: string;
  /** Lower case; unique. */
  email: string;
  /** "scrypt$<log2 N>$<r>$<p>$<salt base64>$<hash base64>" (see secrets.ts). */
  passwordHash: string;
  emailVerified: boolean;
  verifiedAt?: Instant;
  createdAt: Instant;
  /** Changed by a reset or a change of password; sessions opened before it are no longer valid. */
  passwordChangedAt: Instant;
  lastLoginAt?: Instant;
  /** The licensing Publisher this account acts for, set when an application is approved. */
  publisherId?: string;
  disabled?: boolean;
  /** SHA-256 of the outstanding single-use tokens; a newer token replaces an older one. */
  verifyTokenHash?: string;
  resetTokenHash?: string;
}

/** A portal account as other layers see it: no password hash, no token hashes. */
export type PortalAccountView = Omit<PortalAccount, "passwordHash" | "verifyTokenHash" | "resetTokenHash">;

export type TokenPurpose = "verify" | "reset";

/** documents("portal-tokens"), key "token:<sha-256 hex of the token>". */
export interface TokenRecord {
  accountId: string;
  purpose: TokenPurpose;
  createdAt: Instant;
  expiresAt: Instant;
}

/**
 * What an application asks for: a client licence for an app people chat with, or a gateway
 * licence for a component (a bridge to another network) attached under its own domain.
 */
export type ApplicationScope = "client" | "gateway";

/** The fields of the application form, as validated (see applications.ts). */
export interface ApplicationForm {
  organisation: string;
  contactName: string;
  contactEmail: string;
  appName: string;
  description: string;
  /** Lower case, e.g. ["android", "linux"]; may be empty for a gateway. */
  platforms: string[];
  website?: string;
  expectedUsers: number;
  scope: ApplicationScope;
  /** A gateway's component domain (the subject of its gateway licence), normalised. */
  domain?: string;
  termsAccepted: true;
}

export type ApplicationStatus = "submitted" | "under-review" | "approved" | "rejected";

export interface ApplicationEvent {
  at: Instant;
  /** "portal:<account id>" for the publisher, the admin actor otherwise. */
  actor: string;
  status: ApplicationStatus;
  note?: string;
}

export interface Application extends ApplicationForm {
  /** "apl_…", sortable by submission time. */
  id: string;
  /** The portal account that submitted it. */
  accountId: string;
  status: ApplicationStatus;
  submittedAt: Instant;
  updatedAt: Instant;
  /** Set while an approval runs, so a second approval of the same application waits its turn. */
  approvingSince?: Instant;
  decidedAt?: Instant;
  decidedBy?: string;
  rejectionReason?: string;
  /** What the approval created or used in the licensing registry. */
  publisherId?: string;
  clientId?: string;
  licenceId?: string;
  history: ApplicationEvent[];
}

/** "all" publishers, those "affected" by a policy change, or one publisher ("publisher:<id>"). */
export type NoticeAudience = "all" | "affected" | `publisher:${string}`;

export interface Notice {
  /** "ntc_…", sortable by creation time. */
  id: string;
  subject: string;
  body: string;
  audience: NoticeAudience;
  /** For "affected": the policy change the audience was computed from. */
  policyChange?: { auditId?: number; at?: Instant };
  requiresAck: boolean;
  createdAt: Instant;
  createdBy: string;
  recipients: number;
}

export type Delivery = "pending" | "delivered" | "bounced";

/** One mail sent to a recipient (the notice itself or a reminder) and what became of it. */
export interface RecipientMail {
  mailId: string;
  queuedAt: Instant;
  delivery: Delivery;
  /** When the SMTP relay accepted it. */
  emailedAt?: Instant;
  bouncedAt?: Instant;
  error?: string;
}

/** documents("notices"), key "recipient:<notice id>:<publisher id>". */
export interface NoticeRecipient {
  noticeId: string;
  publisherId: string;
  organisation: string;
  email: string;
  /** For "affected": why this publisher receives the notice, one line per app. */
  reasons?: string[];
  /** The notice mail: emailedAt and delivery are the figures the console shows. */
  mailId: string;
  queuedAt: Instant;
  delivery: Delivery;
  emailedAt?: Instant;
  bouncedAt?: Instant;
  deliveryError?: string;
  readAt?: Instant;
  acknowledgedAt?: Instant;
  /** The portal account that acknowledged, or the actor who recorded it. */
  acknowledgedBy?: string;
  remindersSent: number;
  lastReminderAt?: Instant;
  reminders: RecipientMail[];
}

/** What a mail is about, so its delivery result can be recorded where it matters. */
export type MailRef =
  | { kind: "notice" | "reminder"; noticeId: string; publisherId: string }
  | { kind: "application"; applicationId: string; event: ApplicationStatus }
  | { kind: "account"; accountId: string; purpose: "verify" | "reset" | "already-registered" };

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  ref?: MailRef;
}

export type MailStatus = "queued" | "sending" | "sent" | "bounced";

/** documents("outbox"): "pending:<id>" until sent or bounced, then "done:<id>". */
export interface OutboxMail extends OutgoingMail {
  /** "mail_…", sortable by creation time; also the local part of the Message-ID. */
  id: string;
  status: MailStatus;
  createdAt: Instant;
  attempts: number;
  /** Not attempted before this instant. */
  nextAttemptAt: Instant;
  /** While "sending": another worker may take the mail over after this instant (a crash mid-send). */
  leaseUntil?: Instant;
  lastAttemptAt?: Instant;
  lastError?: string;
  sentAt?: Instant;
  bouncedAt?: Instant;
  /** The relay's reply to the accepted or refused mail. */
  response?: string;
}
