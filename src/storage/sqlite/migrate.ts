import type Database from "better-sqlite3";
import type { MigrationListener } from "../migration-listener.js";
import { SchemaTooNewError } from "./errors.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

/**
 * Brings the database up to the newest schema this code knows and returns that version.
 * Safe to run on every start and from several processes at once: each migration runs in
 * an IMMEDIATE transaction that re-reads the version under the write lock.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
  onApply?: MigrationListener,
): number {
  checkOrder(migrations);
  db.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version     INTEGER NOT NULL PRIMARY KEY,
      description TEXT    NOT NULL,
      applied_at  INTEGER NOT NULL
    ) STRICT
  `);
  const currentVersion = db
    .prepare<[], number>("SELECT coalesce(max(version), 0) FROM schema_migrations")
    .pluck();
  const record = db.prepare<[number, string, number]>(
    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
  );
  const latest = migrations.at(-1)?.version ?? 0;

  const apply = db.transaction((migration: Migration) => {
    const current = currentVersion.get()!;
    if (current > latest) throw new SchemaTooNewError(current, latest);
    if (current >= migration.version) return;
    onApply?.({ version: migration.version, description: migration.description, upgrade: start > 0 });
    migration.up(db);
    record.run(migration.version, migration.description, Date.now());
  });

  const start = currentVersion.get()!;
  if (start > latest) throw new SchemaTooNewError(start, latest);
  for (const migration of migrations) {
    if (migration.version > start) apply.immediate(migration);
  }
  return currentVersion.get()!;
}

function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(`migration #${index} has version ${migration.version}, expected ${index + 1}`);
    }
  });
}
