/**
 * What makes someone an administrator over HTTP, as stored data:
 * - API tokens (`documents("api-tokens")`): a secret `sbt_<43 base64url chars>` shown once
 *   at creation; only its SHA-256 is kept (`token:<hex>` → record), with a name index
 *   (`name:<name>` → the token currently holding the name). Revoked tokens stay listed.
 * - The admin role of XMPP accounts (`documents("admin-roles")`, key = account name),
 *   which lets the account log in to the console with its XMPP password.
 * Every change is appended to the audit log (`archive("audit")`), like licensing changes.
 * Used by the token/admin commands (any process) and by the HTTP layer (the server).
 */
import { createHash, randomBytes } from "node:crypto";
import { AUDIT_ARCHIVE } from "../commands/audit.js";
import type { Clock } from "../core/clock.js";
import { CommandError } from "../core/commands.js";
import type { ArchiveStore, DocumentStore, Storage } from "../core/storage/types.js";

export const TOKEN_STORE = "api-tokens";
export const ROLE_STORE = "admin-roles";
export const TOKEN_PREFIX = "sbt_";

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_SYNTAX = /^sbt_[A-Za-z0-9_-]{43}$/;
/** lastUsedAt is written at most this often per token. */
const LAST_USED_RESOLUTION_MS = 5 * 60_000;

export interface TokenRecord {
  name: string;
  createdAt: number;
  createdBy: string;
  revokedAt?: number;
  revokedBy?: string;
  lastUsedAt?: number;
}

interface NameEntry {
  hash: string;
  revoked: boolean;
}

export interface RoleRecord {
  grantedAt: number;
  grantedBy: string;
}

/** What a presented token is. */
export type TokenCheck =
  | { kind: "valid"; record: TokenRecord }
  | { kind: "revoked"; record: TokenRecord }
  | { kind: "unknown" };

interface AuditEntry {
  actor: string;
  subject: string;
  before?: unknown;
  after?: unknown;
}

export function hashToken(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export class AdminStore {
  private readonly tokens: DocumentStore<TokenRecord | NameEntry>;
  private readonly roles: DocumentStore<RoleRecord>;
  private readonly audit: ArchiveStore<AuditEntry>;
  private readonly lastUsedWritten = new Map<string, number>();

  constructor(
    storage: Storage,
    private readonly clock: Clock,
  ) {
    this.tokens = storage.documents(TOKEN_STORE);
    this.roles = storage.documents<RoleRecord>(ROLE_STORE);
    this.audit = storage.archive<AuditEntry>(AUDIT_ARCHIVE);
  }

  // ---- API tokens ----

  /** Creates a token; the secret is returned here only. A revoked token's name may be reused. */
  async createToken(name: string, actor: string): Promise<{ secret: string; record: TokenRecord }> {
    if (!TOKEN_NAME.test(name)) {
      throw new CommandError(
        `invalid token name "${name}": letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit`,
      );
    }
    const secret = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const hash = hashToken(secret);
    await this.tokens.update(`name:${name}`, (current) => {
      if (current && !(current as NameEntry).revoked)
        throw new CommandError(`a token named ${name} already exists`, 409);
      return { hash, revoked: false };
    });
    const record: TokenRecord = { name, createdAt: this.clock.now(), createdBy: actor };
    await this.tokens.put(`token:${hash}`, record);
    await this.log("token.create", actor, `token:${name}`, undefined, { name });
    return { secret, record };
  }

  /** Every token ever created (revoked ones too), newest first. */
  async listTokens(): Promise<TokenRecord[]> {
    const rows = await this.tokens.list({ prefix: "token:" });
    return rows.map((r) => r.value as TokenRecord).sort((a, b) => b.createdAt - a.createdAt);
  }

  async revokeToken(name: string, actor: string): Promise<TokenRecord & { revokedAt: number }> {
    let hash: string | undefined;
    await this.tokens.update(`name:${name}`, (current) => {
      const entry = current as NameEntry | undefined;
      if (!entry || entry.revoked) throw new CommandError(`no active token named ${name}`, 404);
      hash = entry.hash;
      return { ...entry, revoked: true };
    });
    const now = this.clock.now();
    const updated = (await this.tokens.update(`token:${hash!}`, (current) => ({
      ...((current as TokenRecord | undefined) ?? { name, createdAt: now, createdBy: "unknown" }),
      revokedAt: now,
      revokedBy: actor,
    }))) as TokenRecord & { revokedAt: number };
    await this.log("token.revoke", actor, `token:${name}`, undefined, { revokedAt: now });
    return updated;
  }

  /** Looks a presented secret up (one read); notes its use at most every few minutes. */
  async checkToken(secret: string): Promise<TokenCheck> {
    if (!TOKEN_SYNTAX.test(secret)) return { kind: "unknown" };
    const hash = hashToken(secret);
    const record = (await this.tokens.get(`token:${hash}`)) as TokenRecord | undefined;
    if (!record) return { kind: "unknown" };
    if (record.revokedAt !== undefined) return { kind: "revoked", record };
    const now = this.clock.now();
    if (now - (this.lastUsedWritten.get(hash) ?? 0) >= LAST_USED_RESOLUTION_MS) {
      this.lastUsedWritten.set(hash, now);
      await this.tokens.update(`token:${hash}`, (current) =>
        current ? { ...(current as TokenRecord), lastUsedAt: now } : current,
      );
    }
    return { kind: "valid", record };
  }

  // ---- admin role ----

  async grantAdmin(username: string, actor: string): Promise<RoleRecord> {
    const record: RoleRecord = { grantedAt: this.clock.now(), grantedBy: actor };
    await this.roles.update(username, (current) => {
      if (current) throw new CommandError(`${username} already holds the admin role`, 409);
      return record;
    });
    await this.log("admin.grant", actor, `account:${username}`, undefined, record);
    return record;
  }

  async revokeAdmin(username: string, actor: string): Promise<void> {
    let before: RoleRecord | undefined;
    await this.roles.update(username, (current) => {
      if (!current) throw new CommandError(`${username} does not hold the admin role`, 404);
      before = current;
      return undefined;
    });
    await this.log("admin.revoke", actor, `account:${username}`, before, undefined);
  }

  async isAdmin(username: string): Promise<boolean> {
    return (await this.roles.get(username)) !== undefined;
  }

  async listAdmins(): Promise<({ name: string } & RoleRecord)[]> {
    return (await this.roles.list()).map((r) => ({ name: r.key, ...r.value }));
  }

  private async log(kind: string, actor: string, subject: string, before: unknown, after: unknown) {
    await this.audit.append({
      at: this.clock.now(),
      kind,
      data: {
        actor,
        subject,
        ...(before !== undefined ? { before } : {}),
        ...(after !== undefined ? { after } : {}),
      },
    });
  }
}
