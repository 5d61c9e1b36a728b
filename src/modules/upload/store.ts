/**
 * Slots and stored files. A slot is a document (`Storage.documents("uploads")`, keyed by
 * its random id) holding what the client announced, its owner, when it expires and the
 * SHA-256 of the secret the PUT must present; the uploaded file lives under
 * `<dataDir>/uploads/<id>/<filename>` and the same document then records it as stored.
 * Quotas are summed over the owner's documents, so pending slots count too.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Clock } from "../../core/clock.js";
import type { DocumentStore } from "../../core/storage/types.js";

export interface UploadRecord {
  owner: string;
  filename: string;
  size: number;
  /** The content type the slot was asked with; empty when none was given. */
  contentType: string;
  createdAt: number;
  /** A pending slot is void after this time. */
  expiresAt: number;
  /** SHA-256 (hex) of the secret the PUT carries in its Authorization header. */
  secretHash: string;
  state: "pending" | "stored";
  /** The content type the file is served with (once stored). */
  servedType?: string;
  storedAt?: number;
}

export class UploadRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "UploadRefused";
  }
}

const DEFAULT_TYPE = "application/octet-stream";

/** Only the media type, lower case, without parameters ("text/plain; charset=utf-8" → "text/plain"). */
export function mediaType(value: string): string {
  return value.split(";")[0]!.trim().toLowerCase();
}

const hashOf = (secret: string) => createHash("sha256").update(secret).digest("hex");

export class UploadStore {
  readonly stats = { slots: 0, uploads: 0, uploadedBytes: 0, removed: 0 };

  constructor(
    private readonly docs: DocumentStore<UploadRecord>,
    private readonly dir: string,
    private readonly clock: Clock,
  ) {}

  /** Bytes the account keeps or has slots for (pending slots until they expire). */
  async usage(owner: string): Promise<number> {
    const now = this.clock.now();
    let total = 0;
    for (const { value } of await this.docs.list()) {
      if (value.owner !== owner) continue;
      if (value.state === "pending" && value.expiresAt <= now) continue;
      total += value.size;
    }
    return total;
  }

  /** A new slot: its id and the secret the PUT must present. */
  async createSlot(
    slot: Pick<UploadRecord, "owner" | "filename" | "size" | "contentType">,
    ttlMs: number,
  ): Promise<{ id: string; secret: string }> {
    const id = randomBytes(18).toString("base64url");
    const secret = randomBytes(32).toString("base64url");
    const now = this.clock.now();
    await this.docs.put(id, {
      ...slot,
      createdAt: now,
      expiresAt: now + ttlMs,
      secretHash: hashOf(secret),
      state: "pending",
    });
    this.stats.slots++;
    return { id, secret };
  }

  get(id: string): Promise<UploadRecord | undefined> {
    return this.docs.get(id);
  }

  filePath(id: string, record: UploadRecord): string {
    return path.join(this.dir, id, record.filename);
  }

  /**
   * Stores the body of a PUT into the slot `id`, after checking it against the slot: the
   * secret, the expiry, the declared length and content type; the body may not run past
   * the announced size. Refusals are UploadRefused with the HTTP status to answer.
   */
  async put(
    id: string,
    filename: string,
    request: { secret: string | undefined; length: number | undefined; contentType: string | undefined },
    body: Readable,
  ): Promise<UploadRecord> {
    const record = await this.docs.get(id);
    if (!record || record.filename !== filename) throw new UploadRefused(404, "no such upload slot");
    if (record.state !== "pending") throw new UploadRefused(409, "this slot was used already");
    const given = Buffer.from(hashOf(request.secret ?? ""), "hex");
    if (request.secret === undefined || !timingSafeEqual(given, Buffer.from(record.secretHash, "hex")))
      throw new UploadRefused(403, "missing or wrong slot token");
    if (record.expiresAt <= this.clock.now()) throw new UploadRefused(403, "the slot has expired");
    if (request.length === undefined) throw new UploadRefused(411, "Content-Length is required");
    if (request.length !== record.size)
      throw new UploadRefused(
        request.length > record.size ? 413 : 400,
        `Content-Length ${request.length} is not the slot's size ${record.size}`,
      );
    const givenType = request.contentType ? mediaType(request.contentType) : "";
    if (record.contentType !== "" && givenType !== mediaType(record.contentType))
      throw new UploadRefused(400, `Content-Type must be ${record.contentType}`);

    const folder = path.join(this.dir, id);
    await mkdir(folder, { recursive: true });
    const partial = path.join(folder, ".part");
    let received = 0;
    const limit = record.size;
    try {
      await pipeline(
        body,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            received += chunk.length;
            if (received > limit) throw new UploadRefused(413, "the body is longer than the slot's size");
            yield chunk;
          }
        },
        createWriteStream(partial, { flags: "wx" }),
      );
      if (received !== limit) throw new UploadRefused(400, "the body is shorter than the slot's size");
      // A second PUT to the same slot racing this one finds the part file there (flag wx).
      await rename(partial, this.filePath(id, record));
    } catch (err) {
      await rm(partial, { force: true });
      if ((err as NodeJS.ErrnoException).code === "EEXIST")
        throw new UploadRefused(409, "this slot is being used");
      throw err;
    }
    const stored = await this.docs.update(id, (current) =>
      current
        ? {
            ...current,
            state: "stored",
            servedType: givenType || record.contentType || DEFAULT_TYPE,
            storedAt: this.clock.now(),
          }
        : undefined,
    );
    if (!stored) {
      await rm(folder, { recursive: true, force: true });
      throw new UploadRefused(404, "the slot was removed");
    }
    this.stats.uploads++;
    this.stats.uploadedBytes += limit;
    return stored;
  }

  /** Removes every slot and file of an account (it was deleted). */
  async removeOwnedBy(owner: string): Promise<number> {
    let removed = 0;
    for (const { key, value } of await this.docs.list()) {
      if (value.owner !== owner) continue;
      await rm(path.join(this.dir, key), { recursive: true, force: true });
      await this.docs.delete(key);
      removed++;
    }
    return removed;
  }

  /** Removes unused slots past their expiry and files older than `maxAgeMs` (0: keeps files). */
  async removeExpired(maxAgeMs: number): Promise<number> {
    const now = this.clock.now();
    let removed = 0;
    for (const { key, value } of await this.docs.list()) {
      const expired =
        value.state === "pending"
          ? value.expiresAt <= now
          : maxAgeMs > 0 && (value.storedAt ?? value.createdAt) + maxAgeMs <= now;
      if (!expired) continue;
      await rm(path.join(this.dir, key), { recursive: true, force: true });
      await this.docs.delete(key);
      removed++;
    }
    this.stats.removed += removed;
    return removed;
  }
}
