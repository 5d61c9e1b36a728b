/**
 * Secrets every node serving the network must agree on (the dialback key, the secret
 * behind the SCRAM decoy salts), kept in the storage the nodes share, so the nodes of a
 * cluster read the same ones without files copied between machines. A secret an earlier
 * version made in the data directory (`secrets/NAME`) is adopted the first time, so an
 * existing server keeps its own.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Storage } from "./types.js";

/** The document store of the shared secrets, by name. */
export const SHARED_SECRETS_STORE = "server-secrets";

interface StoredSecret {
  /** base64 */
  secret: string;
  createdAt: number;
}

/**
 * The secret `name`: read, or created on first use atomically (nodes starting together
 * agree on the one stored first).
 */
export async function sharedSecret(
  storage: Storage,
  name: string,
  dataDir: string,
  now: number,
): Promise<Buffer> {
  const store = storage.documents<StoredSecret>(SHARED_SECRETS_STORE);
  const stored =
    (await store.get(name)) ??
    (await store.update(
      name,
      (cur) => cur ?? { secret: legacyOrNew(dataDir, name).toString("base64"), createdAt: now },
    ));
  if (!stored) throw new Error(`the shared secret ${name} could not be stored`);
  return Buffer.from(stored.secret, "base64");
}

function legacyOrNew(dataDir: string, name: string): Buffer {
  const file = path.join(dataDir, "secrets", name);
  return existsSync(file) ? readFileSync(file) : randomBytes(32);
}
