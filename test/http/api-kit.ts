/**
 * A real server for HTTP tests: SwitchboardServer on a temporary data directory with the
 * standard modules, the c2s port and the HTTP listener on free loopback ports, an admin
 * API token, and a small fetch wrapper that keeps cookies like a browser would.
 */

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { Clock } from "../../src/core/clock.js";
import { deriveCredentials } from "../../src/core/sasl/credentials.js";
import { AdminStore } from "../../src/http/admin-store.js";
import type { HttpPlugin } from "../../src/http/context.js";
import { standardHttpPlugins } from "../../src/http/index.js";
import { standardModules } from "../../src/modules/index.js";
import { loadServerConfig } from "../../src/server/config.js";
import { allCommands } from "../../src/server/parts.js";
import { SwitchboardServer } from "../../src/server/server.js";
import { freePorts, type TestServer } from "../helpers/server.js";

/** Parsed JSON that tests navigate freely: a wrong path fails the assertion that reads it. */
// biome-ignore lint/suspicious/noExplicitAny: answers are checked by assertions, not by types
export type Json = any;

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Json;
}

export interface CallOptions {
  /** An API token (Authorization: Bearer …); omit for none. */
  token?: string;
  /** JSON body (POST); a string is sent as is. */
  body?: unknown;
  /** Form body (application/x-www-form-urlencoded). */
  form?: Record<string, string>;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  /** Cookie jar to send and update (a browser). */
  jar?: CookieJar;
}

/** Cookies by name, as a browser keeps them for one site. */
export class CookieJar {
  readonly cookies = new Map<string, string>();
  /** The raw Set-Cookie lines received, newest last. */
  readonly setCookies: string[] = [];

  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  update(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === "" || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

export interface WebServer {
  server: SwitchboardServer;
  /** http(s)://127.0.0.1:<port> */
  base: string;
  dataDir: string;
  domain: string;
  c2sPort: number;
  /** An API token of an admin named "test-admin". */
  token: string;
  call(method: string, urlPath: string, opts?: CallOptions): Promise<Answer>;
  addUser(name: string, password: string): Promise<void>;
  /** What connectJs and the raw client helpers need to reach the c2s port. */
  asTestServer(): TestServer;
  stop(): Promise<void>;
}

export async function startWebServer(
  opts: { config?: Record<string, unknown>; clock?: Clock; plugins?: HttpPlugin[]; https?: boolean } = {},
): Promise<WebServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "sb-http-"));
  const [c2sPort, httpPort] = (await freePorts(2)) as [number, number];
  const config = loadServerConfig({
    overrides: {
      domain: "localhost",
      dataDir,
      bind: "127.0.0.1",
      c2sPort,
      c2sTlsPort: 0,
      componentPort: 0,
      s2sPort: 0,
      httpPort,
      logLevel: "silent",
      scramIterations: 4096,
      ...(opts.https ? { http: { tls: "on" } } : {}),
      ...opts.config,
    },
  });
  const server = await SwitchboardServer.start(config, {
    modules: standardModules,
    logger: pino({ level: process.env.HTTP_TEST_LOG ?? "silent" }),
    http: { plugins: [...standardHttpPlugins, ...(opts.plugins ?? [])], commands: allCommands },
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const base = server.http!.url!;
  const { secret } = await new AdminStore(server.services.storage, server.services.clock).createToken(
    "test-admin",
    "test",
  );

  async function call(method: string, urlPath: string, o: CallOptions = {}): Promise<Answer> {
    const url = new URL(urlPath, base);
    for (const [k, v] of Object.entries(o.query ?? {})) {
      for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, one);
    }
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    const cookie = o.jar?.header();
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (o.form) {
      headers["content-type"] ??= "application/x-www-form-urlencoded";
      body = new URLSearchParams(o.form).toString();
    } else if (o.body !== undefined) {
      headers["content-type"] ??= "application/json";
      body = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
    }
    const res = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      redirect: "manual",
    });
    o.jar?.update(res.headers);
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  return {
    server,
    base,
    dataDir,
    domain: config.domain,
    c2sPort,
    token: secret,
    call,
    async addUser(name, password) {
      const creds = deriveCredentials(password, { iterations: 4096, hashes: ["SHA-1", "SHA-256"] });
      if (!(await server.services.storage.accounts.create(name, creds))) throw new Error(`${name} exists`);
    },
    asTestServer() {
      return { host: "127.0.0.1", domain: config.domain, c2sPort, c2sTlsPort: 0 } as unknown as TestServer;
    },
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Asserts the shape every error answer must have (RFC 9457) and returns the document. */
export function problemOf(a: Answer, status: number): Json {
  const type = a.headers.get("content-type") ?? "";
  if (!type.startsWith("application/problem+json")) {
    throw new Error(`expected a problem document, got ${a.status} ${type}: ${a.text.slice(0, 300)}`);
  }
  const p = a.json;
  if (a.status !== status || p?.status !== status) {
    throw new Error(`expected status ${status}, got ${a.status} with ${a.text.slice(0, 300)}`);
  }
  for (const k of ["type", "title"]) {
    if (typeof p[k] !== "string" || p[k] === "") throw new Error(`problem without ${k}: ${a.text}`);
  }
  return p;
}
