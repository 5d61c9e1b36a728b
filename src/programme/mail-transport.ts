/**
 * Sending one mail over SMTP with nodemailer, and what a failure means for the outbox:
 * - "bounce": the relay refused the recipient or the message with a permanent reply
 *   (5xx other than 503, RFC 5321 §4.2.1) — sending it again would get the same answer;
 * - "retry-mail": a transient refusal of this mail (4xx to RCPT TO or DATA) — try it later;
 * - "retry-server": the relay is unreachable or unusable (connection refused, timeout, TLS,
 *   authentication, 421, a refused sender) — every mail waits, with backoff.
 */
import { createTransport } from "nodemailer";
import type { ServerConfig } from "../core/config.js";

export interface MailMessage {
  from: string;
  to: string;
  subject: string;
  text: string;
  /** The same id on every attempt, so a receiver can drop a duplicate after a lost reply. */
  messageId: string;
}

export interface SendResult {
  response?: string;
}

export interface MailTransport {
  send(message: MailMessage): Promise<SendResult>;
  close(): void;
}

export type FailureKind = "bounce" | "retry-mail" | "retry-server";

interface SmtpError {
  code?: string;
  responseCode?: number;
  permanent?: boolean;
  command?: string;
  response?: string;
  message?: string;
}

const RECIPIENT_OR_MESSAGE = new Set(["RCPT TO", "DATA"]);

export function classifySmtpError(err: unknown): FailureKind {
  const e = (err ?? {}) as SmtpError;
  const aboutThisMail = e.command !== undefined && RECIPIENT_OR_MESSAGE.has(e.command);
  if (typeof e.responseCode !== "number" || !aboutThisMail || e.responseCode === 421) return "retry-server";
  const permanent = e.permanent ?? (e.responseCode >= 500 && e.responseCode < 600 && e.responseCode !== 503);
  return permanent ? "bounce" : "retry-mail";
}

/** One line for the outbox record: the relay's reply when there is one. */
export function describeSmtpError(err: unknown): string {
  const e = (err ?? {}) as SmtpError;
  const code = e.code && !(e.message ?? "").includes(e.code) ? `${e.code}: ` : "";
  const text = e.response ?? code + (e.message ?? String(err));
  return text.replace(/\s+/g, " ").slice(0, 500);
}

export type MailConfig = ServerConfig["mail"];

/** The SMTP relay of the configuration, or undefined when none is configured. */
export function smtpTransport(mail: MailConfig): MailTransport | undefined {
  const smtp = mail.smtp;
  if (smtp.host === undefined) return undefined;
  // Pooled: a burst of notices reuses a few connections instead of one handshake per mail.
  const transporter = createTransport({
    pool: true,
    maxConnections: 2,
    idleTimeout: 30_000,
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: smtp.requireTls,
    tls: { rejectUnauthorized: smtp.rejectUnauthorized },
    ...(smtp.user !== undefined ? { auth: { user: smtp.user, pass: smtp.password ?? "" } } : {}),
    // Fail fast when the relay is down: the outbox retries with backoff anyway.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
  });
  return {
    async send(message) {
      const info = await transporter.sendMail({
        from: message.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        messageId: message.messageId,
        // RFC 3834: automatic mail, so auto-responders stay quiet.
        headers: { "Auto-Submitted": "auto-generated" },
      });
      return { response: typeof info.response === "string" ? info.response : undefined };
    },
    close() {
      transporter.close();
    },
  };
}
