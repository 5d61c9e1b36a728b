/** The push module's top-level section, `push`. */
import { z } from "zod";
import type { ConfigSection } from "../../core/config.js";

export const PushConfig = z
  .object({
    /**
     * Put the message text in the notification (`last-message-body`). Off by default: the
     * notification passes through the app server and the platform's push service.
     */
    includeBody: z.boolean().default(false),
    /** App server registrations one account may hold (one per client app and device). */
    maxRegistrationsPerAccount: z.number().int().min(1).max(1000).default(20),
    /** Seconds to wait for the app server's answer to a publish; no answer keeps the registration. */
    publishTimeoutSeconds: z.number().positive().max(300).default(30),
    /** Longest message text put in a notification when `includeBody` is on, in characters. */
    maxBodyChars: z.number().int().min(1).max(4096).default(256),
  })
  .prefault({});
export type PushConfig = z.infer<typeof PushConfig>;

export const pushConfigSection = {
  keys: { push: PushConfig },
} satisfies ConfigSection;

declare module "../../core/config.js" {
  interface ConfigSections {
    push: PushConfig;
  }
}
