/**
 * The file upload service's section of the configuration (`upload:`): where it is served,
 * how large a file may be, how much one account may keep, and how long files are kept.
 */
import { z } from "zod";
import type { ConfigSection } from "../../core/config.js";

export const UploadSchema = z
  .object({
    /** Serve the upload service at all (it also needs the HTTP listener: `httpPort` above 0). */
    enabled: z.boolean().default(true),
    /** The service's domain; default upload.<domain>. */
    domain: z.string().default(""),
    /** The service's name in service discovery. */
    name: z.string().min(1).default("HTTP file upload"),
    /** The largest file accepted, in bytes (announced as max-file-size). */
    maxFileBytes: z
      .number()
      .int()
      .min(1)
      .default(10 * 1024 * 1024),
    /** Bytes one account may keep stored (pending slots count); 0: no limit. */
    quotaBytesPerUser: z
      .number()
      .int()
      .min(0)
      .default(100 * 1024 * 1024),
    /**
     * Where uploaded files are kept; default `<dataDir>/uploads` (a relative path is taken from
     * the data directory). In a cluster, a directory every node shares (a network filesystem):
     * a file PUT to one node is served by GET from any.
     */
    directory: z.string().default(""),
    /** Files are deleted this many days after their upload; 0: kept until deleted by hand. */
    expiryDays: z.number().min(0).default(30),
    /** A slot not used within this many seconds is void. */
    slotTtlSeconds: z.number().int().min(1).default(300),
    /** How often expired files and unused slots are removed. */
    cleanupIntervalMinutes: z.number().min(1).default(60),
  })
  .prefault({});

export type UploadConfig = z.infer<typeof UploadSchema>;

export const uploadConfigSection: ConfigSection = {
  keys: { upload: UploadSchema },
};

declare module "../../core/config.js" {
  interface ConfigSections {
    upload: UploadConfig;
  }
}
