import pg from "pg";
import { errorCode } from "../../core/storage/causes.js";
import { StorageUnavailableError } from "../errors.js";
import { redactUrl } from "./url.js";

/**
 * A named SQL statement: PostgreSQL parses and plans it once per connection (a prepared
 * statement) and later executions only bind values. Names must be unique per text.
 */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

const statementTexts = new Map<string, string>();

/** Declares a named statement; declaring one name with two different texts is a programming error. */
export function sql(name: string, text: string): Statement {
  const known = statementTexts.get(name);
  if (known !== undefined && known !== text) throw new Error(`statement ${name} declared twice`);
  statementTexts.set(name, text);
  return { name, text };
}

/** What runs statements: the pool (one statement, autocommit) or a client inside a transaction. */
export interface Queryable {
  query<Row extends object = Record<string, unknown>>(
    statement: Statement,
    values?: unknown[],
  ): Promise<Row[]>;
  /** Number of rows a statement changed (INSERT, UPDATE, DELETE). */
  execute(statement: Statement, values?: unknown[]): Promise<number>;
}

export interface PostgresConnectionOptions {
  /** postgres://user:password@host:port/database?… (libpq-style parameters such as sslmode work). */
  url: string;
  /** Schema the tables live in (created if missing); default: the connection's search_path (public). */
  schema?: string;
  /** Connections in the pool. */
  poolSize?: number;
  /** How long opening a connection may take before the operation fails. */
  connectTimeoutMs?: number;
}

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Attempts of a transaction that PostgreSQL aborted to resolve a conflict with another one. */
export const TRANSACTION_ATTEMPTS = 5;

/** SQLSTATEs of transactions aborted by a conflict: running them again is the documented remedy. */
const RETRYABLE = new Set(["40001", "40P01"]); // serialization_failure, deadlock_detected

/** Whether PostgreSQL aborted the transaction to resolve a conflict with another one. */
export function abortedByConflict(error: unknown): boolean {
  return RETRYABLE.has(errorCode(error) ?? "");
}

/** bigint (int8) columns hold milliseconds and ids, far below 2^53: read them as numbers. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary"
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** The driver's SQLSTATE (or the system's code) of an error: the core's reading of `code`. */
export { errorCode };

/** SQLSTATEs of a server shutting down, crashed or starting (class 08, connection exceptions, too). */
const UNREACHABLE_STATES: ReadonlySet<string> = new Set(["57P01", "57P02", "57P03"]);
/** The system's codes for a server that cannot be reached (the driver passes them on). */
const UNREACHABLE_SYSTEM_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/** The driver's own errors for a lost or refused connection, which carry no code. */
const UNREACHABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended)/;

/**
 * The error as the rest of the server should see it: a connection that could not be made or
 * was lost becomes StorageUnavailableError (the driver's error its cause), which the stanza
 * path answers as a temporary failure; any other error (a constraint, a conflict) is left
 * as it is, with its SQLSTATE.
 */
export function unreachableOr(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof StorageUnavailableError) return error;
  const code = errorCode(error);
  const unreachable =
    code !== undefined
      ? code.startsWith("08") || UNREACHABLE_STATES.has(code) || UNREACHABLE_SYSTEM_CODES.has(code)
      : UNREACHABLE_MESSAGES.test(error.message);
  if (!unreachable) return error;
  return new StorageUnavailableError(`the PostgreSQL database cannot be reached: ${error.message}`, {
    cause: error,
  });
}

function runner(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<Row extends object>(statement: Statement, values: unknown[] = []) {
      try {
        const result = await client.query<Row>({ name: statement.name, text: statement.text, values });
        return result.rows;
      } catch (error) {
        throw unreachableOr(error);
      }
    },
    async execute(statement: Statement, values: unknown[] = []) {
      try {
        const result = await client.query({ name: statement.name, text: statement.text, values });
        return result.rowCount ?? 0;
      } catch (error) {
        throw unreachableOr(error);
      }
    },
  };
}

/** A pool of connections to one database (and schema), with statements and transactions. */
export class PostgresDatabase implements Queryable {
  readonly #pool: pg.Pool;
  readonly #runner: Queryable;
  #closed = false;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
    this.#runner = runner(pool);
  }

  /** Opens the pool and checks that the server answers (so a wrong URL fails at start). */
  static async open(opts: PostgresConnectionOptions): Promise<PostgresDatabase> {
    const config: pg.PoolConfig = {
      connectionString: opts.url,
      max: opts.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      application_name: "switchboard",
      types,
    };
    // Sent in the startup message, so every connection of the pool (and every prepared
    // statement on it) resolves table names in this schema.
    if (opts.schema !== undefined) config.options = `-c search_path=${quoteIdentifier(opts.schema)}`;
    const pool = new pg.Pool(config);
    // An idle connection that breaks (server restart, network) is dropped by the pool and the
    // next operation opens a new one; without a listener the error would end the process.
    pool.on("error", () => {});
    // The pool listens for errors on idle connections only: a connection that breaks while
    // checked out (a transaction between two statements) would emit an error nobody hears,
    // which ends the process. Its statements fail instead (and it is not reused: the pool
    // drops a connection that is no longer queryable when it comes back).
    pool.on("connect", (client) => client.on("error", () => {}));
    const db = new PostgresDatabase(pool);
    try {
      if (opts.schema !== undefined) {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(opts.schema)}`).catch((error) => {
          // Another process created it at the same moment: IF NOT EXISTS does not cover that race.
          if (errorCode(error) !== "23505" && errorCode(error) !== "42P06") throw error;
        });
      } else {
        await pool.query("SELECT 1");
      }
    } catch (error) {
      await pool.end();
      throw new StorageUnavailableError(
        `cannot use the PostgreSQL database at ${redactUrl(opts.url)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return db;
  }

  query<Row extends object = Record<string, unknown>>(
    statement: Statement,
    values?: unknown[],
  ): Promise<Row[]> {
    return this.#runner.query<Row>(statement, values);
  }

  execute(statement: Statement, values?: unknown[]): Promise<number> {
    return this.#runner.execute(statement, values);
  }

  /**
   * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back
   * when it throws. A transaction PostgreSQL aborts to resolve a conflict (serialization
   * failure, deadlock) runs again from the start, so `fn` must be safe to repeat.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#connect();
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await fn(runner(client));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        try {
          await client.query("ROLLBACK");
        } catch (rollbackError) {
          broken = rollbackError as Error; // the connection is unusable: the pool must not reuse it
        }
        if (!broken && attempt < TRANSACTION_ATTEMPTS && abortedByConflict(error)) {
          await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
          continue;
        }
        throw unreachableOr(error);
      } finally {
        client.release(broken);
      }
    }
  }

  /** Runs `fn` with one connection of the pool to itself (session-level locks, cursors). */
  async withConnection<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (error) {
      // The connection may be left inside a failed transaction or a wait: do not reuse it.
      broken = error as Error;
      throw unreachableOr(error);
    } finally {
      client.release(broken);
    }
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw unreachableOr(error);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
