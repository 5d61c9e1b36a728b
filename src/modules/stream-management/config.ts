/** The stream management module's top-level section, `streamManagement`. */
import { z } from "zod";
import type { ConfigSection } from "../../core/config.js";

export const StreamManagementConfig = z
  .object({
    /**
     * Seconds a session whose connection was lost waits for its client to resume it
     * (XEP-0198 `max`); a client may ask for less. 0 turns resumption off (acks stay).
     */
    resumeTimeoutSeconds: z.number().int().min(0).max(86_400).default(300),
    /**
     * Stanzas sent to a client and not yet acknowledged that a session may hold; one more
     * ends it with a `resource-constraint` stream error (its stanzas go to offline storage).
     */
    maxUnackedStanzas: z.number().int().min(10).max(100_000).default(5000),
    /**
     * Seconds the server waits for the `<a/>` answering its `<r/>`; without one the
     * connection counts as dead: it is dropped and a resumable session hibernates (waits
     * for its client to resume it) instead of being written to. 0 waits forever.
     */
    ackTimeoutSeconds: z.number().int().min(0).max(3600).default(60),
    /** Resumption ids remembered after their session ended, so `<failed/>` can say the `h` it reached. */
    rememberEndedSessions: z.number().int().min(0).max(1_000_000).default(10_000),
  })
  .prefault({});
export type StreamManagementConfig = z.infer<typeof StreamManagementConfig>;

export const streamManagementConfigSection = {
  keys: { streamManagement: StreamManagementConfig },
} satisfies ConfigSection;

declare module "../../core/config.js" {
  interface ConfigSections {
    streamManagement: StreamManagementConfig;
  }
}
