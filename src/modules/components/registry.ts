/**
 * The components (XEP-0114 gateways and services) this network accepts, each with its
 * shared secret. The handshake proves knowledge of the secret as SHA-1(stream id + secret),
 * so the server needs the secret itself to check it: it is kept encrypted (AES-256-GCM)
 * with a key stored in the data directory, never in the database in the clear, and never
 * shown again after `component add`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Storage } from "../../core/storage/types.js";

export interface ComponentRecord {
  domain: string;
  /** base64(iv ‖ tag ‖ ciphertext) of the secret. */
  sealedSecret: string;
  createdAt: number;
}

const STORE = "components";
const KEY_FILE = path.join("secrets", "component-secrets.key");

/** The key that seals component secrets, created once in the data directory (mode 0600). */
export function componentKey(dataDir: string): Buffer {
  const file = path.join(dataDir, KEY_FILE);
  if (existsSync(file)) return readFileSync(file);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, key, { mode: 0o600, flag: "wx" });
  return key;
}

export function sealSecret(key: Buffer, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
}

/** The secret, or undefined when it was sealed with another key (the data directory changed). */
export function openSecret(key: Buffer, sealed: string): string | undefined {
  const raw = Buffer.from(sealed, "base64");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

export class ComponentRegistry {
  constructor(private readonly storage: Storage) {}

  private get docs() {
    return this.storage.documents<ComponentRecord>(STORE);
  }

  get(domain: string): Promise<ComponentRecord | undefined> {
    return this.docs.get(domain);
  }

  async list(): Promise<ComponentRecord[]> {
    return (await this.docs.list()).map((e) => e.value);
  }

  /** Adds or replaces a component's secret; returns whether it existed before. */
  async put(record: ComponentRecord): Promise<boolean> {
    let existed = false;
    await this.docs.update(record.domain, (current) => {
      existed = current !== undefined;
      return record;
    });
    return existed;
  }

  remove(domain: string): Promise<boolean> {
    return this.docs.delete(domain);
  }
}
