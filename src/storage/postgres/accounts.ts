import type { Account, AccountStore, ScramCredential, ScramHash } from "../../core/storage/types.js";
import { prefixUpperBound } from "../prefix.js";
import { type PostgresDatabase, type Queryable, sql } from "./database.js";

interface AccountCredentialRow {
  username: string;
  created_at: number;
  disabled: boolean;
  hash: ScramHash | null;
  salt: Buffer | null;
  iterations: number | null;
  stored_key: Buffer | null;
  server_key: Buffer | null;
}

/** Credentials as parallel arrays, for unnest(): one statement inserts a whole set. */
function credentialColumns(credentials: ScramCredential[]): unknown[] {
  return [
    credentials.map((c) => c.hash),
    credentials.map((c) => c.salt),
    credentials.map((c) => c.iterations),
    credentials.map((c) => c.storedKey),
    credentials.map((c) => c.serverKey),
  ];
}

// Both inserts in one statement: atomic without a transaction, one round trip. The
// credentials are inserted only when the account row was.
const CREATE = sql(
  "accounts.create",
  `WITH account AS (
     INSERT INTO accounts (username, created_at) VALUES ($1, $2)
     ON CONFLICT (username) DO NOTHING RETURNING username
   ), credentials AS (
     INSERT INTO scram_credentials (username, hash, salt, iterations, stored_key, server_key)
     SELECT account.username, c.hash, c.salt, c.iterations, c.stored_key, c.server_key
     FROM account, unnest($3::text[], $4::bytea[], $5::integer[], $6::bytea[], $7::bytea[])
       AS c (hash, salt, iterations, stored_key, server_key)
   )
   SELECT count(*) AS created FROM account`,
);
// One round trip for the login path: the account and its credentials, from one snapshot.
const GET = sql(
  "accounts.get",
  `SELECT a.username, a.created_at, a.disabled, c.hash, c.salt, c.iterations, c.stored_key, c.server_key
   FROM accounts a LEFT JOIN scram_credentials c ON c.username = a.username
   WHERE a.username = $1 ORDER BY c.hash`,
);
const EXISTS = sql("accounts.exists", "SELECT 1 FROM accounts WHERE username = $1");
const LOCK = sql("accounts.lock", "SELECT 1 FROM accounts WHERE username = $1 FOR UPDATE");
const UPSERT_CREDENTIALS = sql(
  "accounts.upsert-credentials",
  `INSERT INTO scram_credentials (username, hash, salt, iterations, stored_key, server_key)
   SELECT $1, c.hash, c.salt, c.iterations, c.stored_key, c.server_key
   FROM unnest($2::text[], $3::bytea[], $4::integer[], $5::bytea[], $6::bytea[])
     AS c (hash, salt, iterations, stored_key, server_key)
   ON CONFLICT (username, hash) DO UPDATE SET salt = excluded.salt, iterations = excluded.iterations,
     stored_key = excluded.stored_key, server_key = excluded.server_key`,
);
const DELETE_OTHER_CREDENTIALS = sql(
  "accounts.delete-other-credentials",
  "DELETE FROM scram_credentials WHERE username = $1 AND NOT (hash = ANY ($2::text[]))",
);
const SET_DISABLED = sql("accounts.set-disabled", "UPDATE accounts SET disabled = $2 WHERE username = $1");
// Foreign keys cascade the delete to every table that holds account data.
const DELETE = sql("accounts.delete", "DELETE FROM accounts WHERE username = $1");
const LIST = sql(
  "accounts.list",
  `SELECT username FROM accounts
   WHERE username >= $1 AND ($2::text IS NULL OR username < $2)
   ORDER BY username LIMIT $3 OFFSET $4`,
);
const COUNT = sql("accounts.count", "SELECT count(*) AS n FROM accounts");
const CREATE_MANY = sql(
  "accounts.create-many",
  `INSERT INTO accounts (username, created_at) SELECT u, $2 FROM unnest($1::text[]) AS u
   ON CONFLICT (username) DO NOTHING RETURNING username`,
);
const INSERT_MANY_CREDENTIALS = sql(
  "accounts.insert-many-credentials",
  `INSERT INTO scram_credentials (username, hash, salt, iterations, stored_key, server_key)
   SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::integer[], $5::bytea[], $6::bytea[])`,
);

/** Accounts per statement in createMany: large enough to amortise round trips, small enough for memory. */
const BATCH = 1_000;

export class PostgresAccountStore implements AccountStore {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly now: () => number,
  ) {}

  async create(username: string, credentials: ScramCredential[]): Promise<boolean> {
    const [row] = await this.db.query<{ created: number }>(CREATE, [
      username,
      this.now(),
      ...credentialColumns(credentials),
    ]);
    return row!.created > 0;
  }

  async get(username: string): Promise<Account | undefined> {
    const rows = await this.db.query<AccountCredentialRow>(GET, [username]);
    const first = rows[0];
    if (!first) return undefined;
    return {
      username: first.username,
      createdAt: first.created_at,
      disabled: first.disabled,
      credentials: rows.filter((r) => r.hash !== null).map(toCredential),
    };
  }

  async exists(username: string): Promise<boolean> {
    return (await this.db.query(EXISTS, [username])).length > 0;
  }

  async setCredentials(username: string, credentials: ScramCredential[]): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // The lock orders this against a concurrent delete of the account.
      if ((await tx.query(LOCK, [username])).length === 0) return false;
      await tx.execute(DELETE_OTHER_CREDENTIALS, [username, credentials.map((c) => c.hash)]);
      await tx.execute(UPSERT_CREDENTIALS, [username, ...credentialColumns(credentials)]);
      return true;
    });
  }

  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    return (await this.db.execute(SET_DISABLED, [username, disabled])) > 0;
  }

  async delete(username: string): Promise<boolean> {
    return (await this.db.execute(DELETE, [username])) > 0;
  }

  async list(opts: { prefix?: string; limit?: number; offset?: number } = {}): Promise<string[]> {
    const limit = opts.limit === undefined ? null : checkCount("limit", opts.limit);
    const offset = opts.offset === undefined ? 0 : checkCount("offset", opts.offset);
    const prefix = opts.prefix ?? "";
    // A range on the primary key: exactly the names starting with the prefix, using the index.
    const rows = await this.db.query<{ username: string }>(LIST, [
      prefix,
      prefixUpperBound(prefix) ?? null,
      limit,
      offset,
    ]);
    return rows.map((r) => r.username);
  }

  async count(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(COUNT);
    return row!.n;
  }

  async createMany(items: { username: string; credentials: ScramCredential[] }[]): Promise<number> {
    // The first occurrence of a repeated name wins, as when creating one by one.
    const unique = new Map<string, ScramCredential[]>();
    for (const item of items) if (!unique.has(item.username)) unique.set(item.username, item.credentials);
    if (unique.size === 0) return 0;
    const all = [...unique];
    const createdAt = this.now();
    return this.db.transaction(async (tx) => {
      let created = 0;
      for (let i = 0; i < all.length; i += BATCH) {
        created += await insertBatch(tx, all.slice(i, i + BATCH), createdAt);
      }
      return created;
    });
  }
}

async function insertBatch(
  tx: Queryable,
  batch: [string, ScramCredential[]][],
  createdAt: number,
): Promise<number> {
  const inserted = await tx.query<{ username: string }>(CREATE_MANY, [
    batch.map(([name]) => name),
    createdAt,
  ]);
  if (inserted.length === 0) return 0;
  const isNew = new Set(inserted.map((r) => r.username));
  const rows = batch
    .filter(([name]) => isNew.has(name))
    .flatMap(([name, creds]) => creds.map((c) => ({ name, c })));
  if (rows.length > 0) {
    await tx.execute(INSERT_MANY_CREDENTIALS, [
      rows.map((r) => r.name),
      ...credentialColumns(rows.map((r) => r.c)),
    ]);
  }
  return inserted.length;
}

function toCredential(row: AccountCredentialRow): ScramCredential {
  return {
    hash: row.hash!,
    salt: row.salt!,
    iterations: row.iterations!,
    storedKey: row.stored_key!,
    serverKey: row.server_key!,
  };
}

function checkCount(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}
