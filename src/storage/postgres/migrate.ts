import type pg from "pg";
import { SchemaTooNewError } from "../errors.js";
import type { MigrationListener } from "../migration-listener.js";
import type { PostgresDatabase } from "./database.js";
import { POSTGRES_MIGRATIONS, type PostgresMigration } from "./migrations.js";

/** Advisory lock class of schema migrations (the second key is the schema's name hashed). */
const MIGRATION_LOCK = 0x5357_4d31; // "SWM1"

/**
 * Brings the schema up to the newest version this code knows and returns that version.
 * Safe on every start and from several processes at once: a session-level advisory lock
 * (per schema) lets one process migrate while the others wait, then find nothing to do.
 */
export async function migratePostgres(
  db: PostgresDatabase,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
  onApply?: MigrationListener,
): Promise<number> {
  checkOrder(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  return db.withConnection(async (client) => {
    const currentVersion = async () =>
      Number(
        (await client.query<{ v: string }>("SELECT coalesce(max(version), 0) AS v FROM schema_migrations"))
          .rows[0]!.v,
      );
    await client.query("SELECT pg_advisory_lock($1, hashtext(current_schema()))", [MIGRATION_LOCK]);
    try {
      await client.query(`
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version     integer NOT NULL PRIMARY KEY,
          description text    NOT NULL,
          applied_at  bigint  NOT NULL
        )`);
      const start = await currentVersion();
      if (start > latest) throw new SchemaTooNewError(start, latest);
      for (const migration of migrations) {
        if (migration.version <= start) continue;
        onApply?.({ version: migration.version, description: migration.description, upgrade: start > 0 });
        await client.query("BEGIN");
        try {
          await migration.up(async (text) => {
            // Several statements in one text give one result each.
            const result: pg.QueryResult | pg.QueryResult[] = await client.query(text);
            return Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows;
          });
          await client.query(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
            [migration.version, migration.description, Date.now()],
          );
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw error;
        }
      }
      return await currentVersion();
    } finally {
      await client.query("SELECT pg_advisory_unlock($1, hashtext(current_schema()))", [MIGRATION_LOCK]);
    }
  });
}

function checkOrder(migrations: readonly PostgresMigration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(`migration #${index} has version ${migration.version}, expected ${index + 1}`);
    }
  });
}
