/**
 * The programme's mails: plain text, short lines, every link absolute on the portal's public
 * URL (the HTTP server's, or config `http.publicUrl`, default http://<bind>:<httpPort>).
 * Portal paths the links use: /portal/verify?token=…, /portal/reset?token=…, /portal/login, /portal/applications/<id>,
 * /portal/notices/<id>.
 */
import type { ServerConfig } from "../core/config.js";
import type { Instant, Licence } from "../licensing/index.js";
import type { Application, Notice } from "./model.js";

export interface MailContext {
  /** Base URL without a trailing slash. */
  publicUrl: string;
  /** The network's name in mails: the XMPP domain. */
  network: string;
}

export interface MailContent {
  subject: string;
  text: string;
}

const WILDCARD = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * The portal's base URL from the configuration (`http.publicUrl`, else the listen address).
 * The HTTP server knows better (HTTPS or not, the port it got) and passes its own.
 */
export function publicUrlOf(config: Pick<ServerConfig, "http" | "bind" | "httpPort" | "domain">): string {
  if (config.http.publicUrl) return config.http.publicUrl.replace(/\/+$/, "");
  // A wildcard listen address is no place to send a browser; the domain usually is.
  const first = config.bind[0] ?? "";
  const host = WILDCARD.has(first) ? config.domain : first;
  const shown = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `http://${shown}:${config.httpPort}`;
}

/**
 * `publicUrl` overrides the configuration (the HTTP layer knows whether it serves HTTPS, and
 * which port it got): a text, or a function read each time a mail is written, since the port
 * is known only once the server listens. An empty answer falls back to the configuration.
 */
export function mailContextOf(config: ServerConfig, publicUrl?: string | (() => string)): MailContext {
  return {
    get publicUrl() {
      const given = typeof publicUrl === "function" ? publicUrl() : publicUrl;
      return (given || publicUrlOf(config)).replace(/\/+$/, "");
    },
    network: config.domain,
  };
}

/** The sender: `mail.from`, or licensing@<domain>. */
export function senderOf(config: ServerConfig): string {
  return config.mail.from ?? `${config.domain} licensing <licensing@${config.domain}>`;
}

export const when = (at: Instant) => new Date(at).toISOString().replace("T", " ").slice(0, 16) + " UTC";

function signature(ctx: MailContext): string {
  return `-- \nThe ${ctx.network} licensing programme\n${ctx.publicUrl}/portal/`;
}

const WIDTH = 72;

/** Wraps prose lines at 72 characters; indented lines (links, tables, quotes) are left as they are. */
export function wrap(text: string): string {
  return text
    .split("\n")
    .flatMap((line) => {
      if (line.length <= WIDTH || /^\s/.test(line)) return [line];
      const out: string[] = [];
      let current = "";
      for (const word of line.split(/ +/)) {
        if (current !== "" && current.length + 1 + word.length > WIDTH) {
          out.push(current);
          current = word;
        } else current = current === "" ? word : `${current} ${word}`;
      }
      out.push(current);
      return out;
    })
    .join("\n");
}

function mail(ctx: MailContext, subject: string, paragraphs: (string | false | undefined)[]): MailContent {
  const body = wrap(paragraphs.filter((p): p is string => typeof p === "string" && p !== "").join("\n\n"));
  return { subject, text: `${body}\n\n${signature(ctx)}\n` };
}

const indent = (s: string) => `  ${s}`;

export function verificationMail(ctx: MailContext, token: string, validHours: number): MailContent {
  return mail(ctx, `Confirm your email address for the ${ctx.network} licensing portal`, [
    "Hello,",
    `someone (we hope it was you) signed up for the ${ctx.network} licensing portal with this address. ` +
      `To confirm it and activate the account, open this link within ${validHours} hours:`,
    indent(`${ctx.publicUrl}/portal/verify?token=${token}`),
    "If you did not sign up, ignore this mail: the account stays inactive.",
  ]);
}

export function alreadyRegisteredMail(ctx: MailContext): MailContent {
  return mail(ctx, `Your ${ctx.network} licensing portal account`, [
    "Hello,",
    "someone tried to sign up for the licensing portal with this address, which already has an account. " +
      "If it was you, log in instead:",
    indent(`${ctx.publicUrl}/portal/login`),
    "If you have forgotten your password, you can set a new one here:",
    indent(`${ctx.publicUrl}/portal/reset`),
    "If it was not you, ignore this mail; nothing has changed.",
  ]);
}

export function resetMail(ctx: MailContext, token: string, validMinutes: number): MailContent {
  return mail(ctx, `Reset your ${ctx.network} licensing portal password`, [
    "Hello,",
    `a new password was requested for your licensing portal account. To choose one, open this link within ${validMinutes} minutes:`,
    indent(`${ctx.publicUrl}/portal/reset?token=${token}`),
    "If you did not ask for it, ignore this mail: your password stays as it is.",
  ]);
}

function applicationSummary(a: Application): string {
  return [
    `Application: ${a.id}`,
    `App:         ${a.appName}`,
    `Organisation: ${a.organisation}`,
    `Scope:       ${a.scope}`,
    a.scope === "gateway" ? `Domain:      ${a.domain}` : `Platforms:   ${a.platforms.join(", ")}`,
  ]
    .map(indent)
    .join("\n");
}

export function applicationReceivedMail(ctx: MailContext, a: Application): MailContent {
  return mail(ctx, `Licence application received: ${a.appName}`, [
    "Hello,",
    `thank you for applying for a ${ctx.network} client licence. We have received your application:`,
    applicationSummary(a),
    "We will write to you when it has been reviewed. You can follow its status here:",
    indent(`${ctx.publicUrl}/portal/applications/${a.id}`),
  ]);
}

export function applicationApprovedMail(ctx: MailContext, a: Application, licence: Licence): MailContent {
  const validity = licence.validUntil
    ? `from ${when(licence.validFrom)} until ${when(licence.validUntil)}`
    : `from ${when(licence.validFrom)}, without an end date`;
  const terms = [
    a.scope === "gateway" ? `Domain:      ${a.domain}` : `Client id:   ${a.clientId}`,
    `Licence:     ${licence.id} (scope ${licence.scope})`,
    `Valid:       ${validity}`,
    licence.maxSessions !== undefined && `Sessions:    at most ${licence.maxSessions} at a time`,
    licence.termsRef !== undefined && `Terms:       ${licence.termsRef}`,
  ]
    .filter((l): l is string => typeof l === "string")
    .map(indent)
    .join("\n");
  if (a.scope === "gateway") {
    return mail(ctx, `Licence application approved: ${a.appName}`, [
      "Hello,",
      `your application for the gateway ${a.appName} has been approved, and a gateway licence has been issued:`,
      terms,
      `The network's operators configure the component's secret for ${a.domain} with you; the gateway then ` +
        "attaches to the server under that domain. You can follow the application here:",
      indent(`${ctx.publicUrl}/portal/applications/${a.id}`),
    ]);
  }
  return mail(ctx, `Licence application approved: ${a.appName}`, [
    "Hello,",
    `your application for ${a.appName} has been approved, and a licence has been issued:`,
    terms,
    "Next step: register your app's Ed25519 public key in the portal (or generate a key pair in your browser there), " +
      "then build the client id, the key id and the private key into your app:",
    indent(`${ctx.publicUrl}/portal/applications/${a.id}`),
  ]);
}

export function applicationRejectedMail(ctx: MailContext, a: Application): MailContent {
  return mail(ctx, `Licence application declined: ${a.appName}`, [
    "Hello,",
    `we have reviewed your application for ${a.appName} and cannot approve it. The reason given:`,
    (a.rejectionReason ?? "").split("\n").map(indent).join("\n"),
    "You are welcome to apply again once the points above are addressed:",
    indent(`${ctx.publicUrl}/portal/applications/${a.id}`),
  ]);
}

function noticeBody(ctx: MailContext, n: Notice, reasons: string[] | undefined): string[] {
  return [
    n.body,
    reasons &&
      reasons.length > 0 &&
      `Why you receive this notice:\n${reasons.map((r) => `  - ${r}`).join("\n")}`,
    n.requiresAck
      ? `Please read the notice and acknowledge it in the portal:\n${indent(`${ctx.publicUrl}/portal/notices/${n.id}`)}`
      : `The notice in the portal:\n${indent(`${ctx.publicUrl}/portal/notices/${n.id}`)}`,
  ].filter((p): p is string => typeof p === "string");
}

export function noticeMail(ctx: MailContext, n: Notice, reasons?: string[]): MailContent {
  return mail(ctx, `[${ctx.network}] ${n.subject}`, noticeBody(ctx, n, reasons));
}

export function reminderMail(ctx: MailContext, n: Notice, sentAt: Instant, reasons?: string[]): MailContent {
  return mail(ctx, `Reminder: [${ctx.network}] ${n.subject}`, [
    `We sent you the notice below on ${when(sentAt)} and have not yet received your acknowledgement.`,
    ...noticeBody(ctx, n, reasons),
  ]);
}
