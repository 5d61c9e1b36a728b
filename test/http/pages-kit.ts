/**
 * The portal and console pages on a real in-process server, driven with Fastify's
 * `inject`: a SwitchboardServer (standard modules, temporary data directory, no listener)
 * with an HttpServer carrying the page plugins and the admin commands including the
 * programme's, and a Browser that keeps cookies and the CSRF token like a browser would.
 * Mails stay in the outbox (no worker runs), where tests read the links.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { CommandDefinition } from "../../src/core/commands.js";
import { deriveCredentials } from "../../src/core/sasl/credentials.js";
import { AdminStore } from "../../src/http/admin-store.js";
import { webAssets } from "../../src/http/assets/index.js";
import { consolePages } from "../../src/http/console/index.js";
import { portalPages } from "../../src/http/portal/index.js";
import { HttpServer } from "../../src/http/server.js";
import { standardModules } from "../../src/modules/index.js";
import { programmeCommands } from "../../src/programme/commands.js";
import { Programme } from "../../src/programme/index.js";
import type { OutboxMail } from "../../src/programme/model.js";
import { loadServerConfig } from "../../src/server/config.js";
import { allCommands } from "../../src/server/parts.js";
import { SwitchboardServer } from "../../src/server/server.js";

export interface Page {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  /** The Location header of a redirect. */
  location?: string;
}

/** The text of the <title> element. */
export function titleOf(page: Page): string {
  const m = /<title>([^<]*)<\/title>/.exec(page.body);
  assert.ok(m, `no <title> in ${page.body.slice(0, 200)}`);
  return m[1]!;
}

let browsers = 0;

/**
 * A browser: cookies kept between requests, the CSRF token taken from the last page, and an
 * address of its own (rate limits count per client address, as they would for real users).
 */
export class Browser {
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;
  readonly address: string;

  constructor(private readonly app: HttpServer["app"]) {
    const n = ++browsers;
    this.address = `10.0.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  }

  private cookieHeader(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  async request(
    method: "GET" | "POST",
    url: string,
    opts: { form?: Record<string, string | string[]>; headers?: Record<string, string>; csrf?: boolean } = {},
  ): Promise<Page> {
    const headers: Record<string, string> = { accept: "text/html", ...(opts.headers ?? {}) };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    let payload: string | undefined;
    if (opts.form) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.form))
        for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
      if (opts.csrf !== false && this.csrf && !params.has("_csrf")) params.append("_csrf", this.csrf);
      payload = params.toString();
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    const res = await this.app.inject({
      method,
      url,
      headers,
      remoteAddress: this.address,
      ...(payload !== undefined ? { payload } : {}),
    });
    for (const c of res.cookies as { name: string; value: string; expires?: Date; maxAge?: number }[]) {
      const gone =
        c.value === "" || (c.expires !== undefined && c.expires.getTime() <= Date.now()) || c.maxAge === 0;
      if (gone) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    const token = /<meta name="csrf-token" content="([^"]+)">/.exec(res.body);
    if (token) this.csrf = token[1];
    const location = res.headers.location;
    return {
      status: res.statusCode,
      headers: res.headers,
      body: res.body,
      ...(typeof location === "string" ? { location } : {}),
    };
  }

  get(url: string, headers?: Record<string, string>): Promise<Page> {
    return this.request("GET", url, headers ? { headers } : {});
  }

  post(
    url: string,
    form: Record<string, string | string[]>,
    opts: { csrf?: boolean; headers?: Record<string, string> } = {},
  ): Promise<Page> {
    return this.request("POST", url, { form, ...opts });
  }

  /** A POST that must redirect; follows the redirect and returns the next page. */
  async postAndFollow(url: string, form: Record<string, string | string[]>): Promise<Page> {
    const res = await this.post(url, form);
    assert.equal(res.status, 303, `POST ${url} → ${res.status}: ${res.body.slice(0, 2000)}`);
    return this.get(res.location!);
  }
}

export interface PagesKit {
  server: SwitchboardServer;
  http: HttpServer;
  programme: Programme;
  domain: string;
  browser(): Browser;
  /** An XMPP account, optionally holding the admin role. */
  addAccount(name: string, password: string, admin?: boolean): Promise<void>;
  /** The mails queued for an address, oldest first. */
  mailsTo(address: string): Promise<OutboxMail[]>;
  /** The first portal link of that kind in the newest mail to an address. */
  linkIn(address: string, pathPrefix: string): Promise<string>;
  /** Runs an admin command as an operator at the command line would. */
  run(words: string, input: Record<string, unknown>): Promise<unknown>;
  stop(): Promise<void>;
}

/** `overrides`: more configuration (e.g. `hosts`). */
export async function startPages(overrides: Record<string, unknown> = {}): Promise<PagesKit> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "sb-pages-"));
  const config = loadServerConfig({
    overrides: {
      domain: "localhost",
      dataDir,
      bind: "127.0.0.1",
      c2sPort: 0,
      c2sTlsPort: 0,
      componentPort: 0,
      s2sPort: 0,
      httpPort: 0,
      logLevel: "silent",
      scramIterations: 4096,
      allowPlaintext: true,
      ...overrides,
    },
  });
  const server = await SwitchboardServer.start(config, {
    modules: standardModules,
    logger: pino({ level: "silent" }),
  });
  const services = server.services;
  const programme = new Programme({
    storage: services.storage,
    clock: services.clock,
    config,
    publicUrl: "https://portal.test",
  });
  const names = new Set(allCommands.map((c) => c.name.join(" ")));
  const commands = [
    ...allCommands,
    ...(programmeCommands as CommandDefinition<never>[]).filter((c) => !names.has(c.name.join(" "))),
  ];
  const http = new HttpServer({ services, streams: { open: [] }, commands });
  http
    .register(webAssets())
    .register(portalPages({ programme: () => programme }))
    .register(consolePages());
  await http.ready();
  const outbox = services.storage.documents<OutboxMail>("outbox");

  const kit: PagesKit = {
    server,
    http,
    programme,
    domain: config.domain,
    browser: () => new Browser(http.app),
    async addAccount(name, password, admin = false) {
      const creds = deriveCredentials(password, { iterations: 4096, hashes: ["SHA-1", "SHA-256"] });
      assert.ok(await services.storage.accounts.create(name, creds));
      if (admin) await new AdminStore(services.storage, services.clock).grantAdmin(name, "test");
    },
    async mailsTo(address) {
      return (await outbox.list())
        .map((d) => d.value)
        .filter((m) => m.to === address)
        .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    },
    async linkIn(address, pathPrefix) {
      const mails = await kit.mailsTo(address);
      const last = mails.at(-1);
      assert.ok(last, `no mail to ${address}`);
      const m = new RegExp(`https://portal\\.test(${pathPrefix.replace(/[?]/g, "\\?")}[^\\s]*)`).exec(
        last.text,
      );
      assert.ok(m, `no ${pathPrefix} link in: ${last.text}`);
      return m[1]!;
    },
    async run(words, input) {
      return (await http.context.runCommand(words.split(" "), input, "cli:test")).data;
    },
    async stop() {
      await http.close();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return kit;
}

/** The value of switchboard_web_login_failures_total for a face (0 before the first failure). */
export async function loginFailures(kit: PagesKit, face: "console" | "portal"): Promise<number> {
  const text = await kit.http.context.metrics.registry.metrics();
  const m = new RegExp(`^switchboard_web_login_failures_total\\{face="${face}"\\} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

/** Signs up, confirms the address and logs in; returns the browser, logged in. */
export async function portalUser(
  kit: PagesKit,
  email: string,
  password = "correct horse battery",
): Promise<Browser> {
  const b = kit.browser();
  await b.get("/portal/signup");
  const signed = await b.post("/portal/signup", { email, password, confirm: password });
  assert.equal(signed.status, 200, signed.body);
  const verified = await b.get(await kit.linkIn(email, "/portal/verify?token="));
  assert.equal(verified.status, 303);
  await b.get("/portal/login");
  const login = await b.post("/portal/login", { email, password });
  assert.equal(login.status, 303, login.body);
  // A login starts a new session with a new CSRF token, which the next page carries.
  await b.get("/portal");
  return b;
}

/** Logs an admin in to the console; returns the browser. */
export async function consoleAdmin(
  kit: PagesKit,
  name = "boss",
  password = "admin password 1",
): Promise<Browser> {
  await kit.addAccount(name, password, true);
  const b = kit.browser();
  await b.get("/console/login");
  const res = await b.post("/console/login", { username: name, password });
  assert.equal(res.status, 303, res.body);
  await b.get("/console");
  return b;
}

/** The fields an application needs, valid. */
export function applicationForm(
  overrides: Record<string, string | string[]> = {},
): Record<string, string | string[]> {
  return {
    organisation: "Example Ltd",
    contactName: "Ada Example",
    contactEmail: "ada@example.com",
    appName: "Example Chat",
    description: "A chat app for teams.",
    platforms: ["android", "linux"],
    website: "https://example.com",
    expectedUsers: "5000",
    scope: "client",
    termsAccepted: "yes",
    ...overrides,
  };
}
