/**
 * The PostgreSQL server the PostgreSQL tests use: SWITCHBOARD_TEST_POSTGRES_URL, or the local
 * server on 127.0.0.1:5432 as user postgres. Each test file works in a database of its own,
 * created for the run and dropped afterwards. Without a reachable server the tests skip
 * (requirePeer: a failure with SWITCHBOARD_REQUIRE_SERVICES=1).
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { requirePeer } from "./services.js";

export const POSTGRES_ADMIN_URL =
  process.env.SWITCHBOARD_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const START_HINT =
  "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start " +
  "(or point SWITCHBOARD_TEST_POSTGRES_URL at a server)";

/** False when PostgreSQL answers, else the skip message (throws with SWITCHBOARD_REQUIRE_SERVICES=1). */
export function postgresSkip(): Promise<false | string> {
  return requirePeer(`PostgreSQL at ${POSTGRES_ADMIN_URL}`, async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } catch (error) {
      return `${(error as Error).message}; ${START_HINT}`;
    } finally {
      await client.end().catch(() => {});
    }
  });
}

export interface TestDatabase {
  name: string;
  url: string;
  /** Drops the database, ending what is still connected to it. */
  drop(): Promise<void>;
  /**
   * Ends every connection to this database (pg_terminate_backend): what a PostgreSQL restart
   * does to its clients, without restarting a server other databases share. Returns how many.
   */
  terminateConnections(): Promise<number>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database named after `label` (and a random part) on the test server. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `switchboard_test_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
    terminateConnections: () =>
      admin((c) =>
        c.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          [name],
        ),
      ).then((r) => r.rowCount ?? 0),
  };
}
