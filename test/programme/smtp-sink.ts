/**
 * A real SMTP server on a loopback port (npm smtp-server) that keeps the mails it accepts,
 * refuses chosen recipients (550: permanent, 451: transient), and can be stopped and started
 * again on the same port to play an unreachable relay.
 */
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  from: string;
  to: string[];
  headers: Map<string, string>;
  subject: string;
  /** The decoded text body. */
  text: string;
}

/** Headers (unfolded, lower-case names) and the body, decoded from quoted-printable or base64. */
export function parseMail(raw: string): { headers: Map<string, string>; text: string } {
  const split = raw.indexOf("\r\n\r\n");
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? "" : raw.slice(split + 4);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]+/g, " ").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const encoding = (headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  let text = body;
  if (encoding === "quoted-printable") {
    const bytes = body
      .replace(/=\r\n/g, "")
      .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    text = Buffer.from(bytes, "latin1").toString("utf8");
  } else if (encoding === "base64") {
    text = Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  }
  return { headers, text: text.replace(/\r\n/g, "\n") };
}

export class SmtpSink {
  readonly mails: ReceivedMail[] = [];
  /** Recipients refused with 550 at RCPT TO. */
  readonly reject = new Set<string>();
  /** Recipients refused with 451 at RCPT TO. */
  readonly defer = new Set<string>();
  port = 0;
  #server: SMTPServer | undefined;
  #waiters: { count: number; resolve: () => void }[] = [];

  async start(): Promise<this> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      disableReverseLookup: true,
      // Stopping the relay drops its connections at once (the tests play a relay going down).
      closeTimeout: 50,
      onRcptTo: (address, _session, cb) => {
        const to = address.address.toLowerCase();
        if (this.reject.has(to))
          return cb(Object.assign(new Error("5.1.1 No such mailbox"), { responseCode: 550 }));
        if (this.defer.has(to))
          return cb(Object.assign(new Error("4.2.1 Mailbox busy"), { responseCode: 451 }));
        cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const { headers, text } = parseMail(Buffer.concat(chunks).toString("latin1"));
          this.mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
            headers,
            subject: headers.get("subject") ?? "",
            text,
          });
          this.#notify();
          cb();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.server.address() as AddressInfo).port;
    this.#server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Mails received for one address. */
  to(address: string): ReceivedMail[] {
    return this.mails.filter((m) => m.to.includes(address));
  }

  /** Resolves once `count` mails have arrived in total (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs = 5000): Promise<void> {
    if (this.mails.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`expected ${count} mails, got ${this.mails.length}`)),
        timeoutMs,
      );
      this.#waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  #notify(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (this.mails.length < w.count) return true;
      w.resolve();
      return false;
    });
  }
}

/** The first portal link of a mail with the given path, e.g. "/portal/verify". */
export function linkIn(mail: ReceivedMail, path: string): URL {
  const match = mail.text.match(new RegExp(`https?://\\S+${path.replace(/[/.?]/g, "\\$&")}\\S*`));
  if (!match) throw new Error(`no ${path} link in:\n${mail.text}`);
  return new URL(match[0]);
}
