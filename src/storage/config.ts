/** The storage backends' section of the configuration (`storage:`). */
import { z } from "zod";
import type { ConfigSection } from "../core/config.js";

export const StorageSchema = z
  .object({
    backend: z.enum(["sqlite"]).default("sqlite"),
    /** SQLite database file; relative to dataDir. */
    sqlitePath: z.string().default("switchboard.sqlite"),
  })
  .prefault({});

export const storageConfigSection = { keys: { storage: StorageSchema } } satisfies ConfigSection;

declare module "../core/config.js" {
  interface ConfigSections {
    storage: z.infer<typeof StorageSchema>;
  }
}
