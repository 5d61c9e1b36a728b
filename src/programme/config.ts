/** The programme's section of the configuration: outgoing mail (`mail:`). */
import { z } from "zod";
import { type ConfigSection, port } from "../core/config.js";

/** Outgoing mail of the licensing programme (portal accounts, applications, notices). */
export const MailSchema = z
  .object({
    /** The SMTP server that relays outgoing mail; without a host, mails wait in the outbox. */
    smtp: z
      .object({
        host: z.string().min(1).optional(),
        port: port.default(587),
        /** Implicit TLS (port 465); otherwise STARTTLS is used when the server offers it. */
        secure: z.boolean().default(false),
        /** Refuse to send unless the connection is upgraded with STARTTLS. */
        requireTls: z.boolean().default(false),
        /** Check the SMTP server's certificate (turn off only for a relay with a self-signed one). */
        rejectUnauthorized: z.boolean().default(true),
        user: z.string().optional(),
        password: z.string().optional(),
      })
      .prefault({}),
    /** Sender of every mail, e.g. "Example Network <licensing@example.org>" (default: licensing@<domain>). */
    from: z.string().min(3).optional(),
    retry: z
      .object({
        /** Wait after the first failed attempt; it doubles after each further failure. */
        initialDelaySeconds: z.number().positive().default(30),
        /** The longest wait between two attempts. */
        maxDelaySeconds: z.number().positive().default(3600),
      })
      .prefault({}),
    /** How often the outbox is checked for mails that are due. */
    pollIntervalSeconds: z.number().positive().default(5),
    /** Sent and bounced mails are deleted from the outbox after this many days. */
    keepDays: z.number().int().min(1).default(90),
  })
  .prefault({});

export const mailConfigSection = { keys: { mail: MailSchema } } satisfies ConfigSection;

declare module "../core/config.js" {
  interface ConfigSections {
    mail: z.infer<typeof MailSchema>;
  }
}
