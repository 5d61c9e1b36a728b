/**
 * Told of each schema migration as it starts (either backend). `upgrade`: the database held an
 * earlier schema (false while a new database is created, migration after migration).
 */
export type MigrationListener = (migration: {
  version: number;
  description: string;
  upgrade: boolean;
}) => void;
