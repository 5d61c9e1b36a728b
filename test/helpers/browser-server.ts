/**
 * The real server process with its HTTP listener (portal, console, admin API)
 * on a free loopback port, and a local SMTP server (npm smtp-server) as its mail
 * relay, configured through a config file as an operator would (`mail.smtp`,
 * `http.publicUrl`), so the links in the mails it sends can be followed.
 */
import { type ReceivedMail, SmtpSink } from "../programme/smtp-sink.js";
import { cli } from "./licensed-setup.js";
import { freePorts, type ServerOptions, startServer, type TestServer } from "./server.js";

const HEALTH_TIMEOUT_MS = 30_000;
/** How long a mail may take: the outbox is polled every second (config below). */
export const MAIL_WAIT_MS = 15_000;

export interface WebServer {
  server: TestServer;
  /** e.g. http://127.0.0.1:41234 */
  baseUrl: string;
  smtp: SmtpSink;
  stop(): Promise<void>;
}

/** Waits for GET /api/v1/health to answer 200 (the HTTP listener is up). */
async function waitForHttp(baseUrl: string, server: TestServer): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    if (!server.running) throw new Error(`the server exited; log ${server.logFile}:\n${server.logTail()}`);
    try {
      const res = await fetch(`${baseUrl}/api/v1/health`);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `no answer from ${baseUrl}/api/v1/health within ${HEALTH_TIMEOUT_MS / 1000} s (${last}); log ${server.logFile}:\n${server.logTail()}`,
  );
}

/**
 * Starts the SMTP relay, then the server with `--http-port` and the relay in its
 * configuration; `admins` are XMPP accounts created with `user add` and given the
 * admin role with `admin grant`.
 */
export async function startWebServer(
  opts: ServerOptions & { admins?: Record<string, string> },
): Promise<WebServer> {
  const smtp = await new SmtpSink().start();
  const [httpPort] = (await freePorts(1)) as [number];
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  let server: TestServer;
  try {
    server = await startServer({
      ...opts,
      extraArgs: [...(opts.extraArgs ?? []), "--http-port", String(httpPort)],
      config: {
        ...opts.config,
        http: { ...(opts.config?.http as object | undefined), publicUrl: baseUrl },
        mail: {
          smtp: { host: "127.0.0.1", port: smtp.port },
          from: "Switchboard licensing <licensing@localhost>",
          pollIntervalSeconds: 1,
          retry: { initialDelaySeconds: 1, maxDelaySeconds: 2 },
        },
      },
    });
  } catch (err) {
    await smtp.stop();
    throw err;
  }
  try {
    await waitForHttp(baseUrl, server);
    for (const [name, password] of Object.entries(opts.admins ?? {})) {
      await server.addUser(name, password);
      await cli(server, ["admin", "grant", name]);
    }
  } catch (err) {
    server.kill();
    await smtp.stop();
    throw err;
  }
  return {
    server,
    baseUrl,
    smtp,
    async stop() {
      try {
        if (server.running) await server.stop();
      } finally {
        await smtp.stop();
      }
    },
  };
}

/**
 * The first mail to `address` whose subject matches, waiting for it; fails with
 * the subjects that did arrive.
 */
export async function mailTo(
  smtp: SmtpSink,
  address: string,
  subject: RegExp,
  timeoutMs = MAIL_WAIT_MS,
): Promise<ReceivedMail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = smtp.to(address).find((m) => subject.test(m.subject));
    if (found) return found;
    if (Date.now() > deadline) {
      const got = smtp.mails.map((m) => `${m.to.join(",")}: ${m.subject}`).join("\n  ") || "none";
      throw new Error(
        `no mail to ${address} with a subject matching ${subject} within ${timeoutMs / 1000} s; mails received:\n  ${got}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The first link in a mail to a path of the server (e.g. "/portal/verify"), as a URL. */
export function linkTo(mail: ReceivedMail, baseUrl: string, pathPrefix: string): URL {
  const links = mail.text.match(/https?:\/\/[^\s<>"]+/g) ?? [];
  const found = links.find((l) => l.startsWith(`${baseUrl}${pathPrefix}`));
  if (!found) {
    throw new Error(`no link to ${baseUrl}${pathPrefix} in the mail "${mail.subject}":\n${mail.text}`);
  }
  return new URL(found);
}
