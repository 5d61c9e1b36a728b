/**
 * In-process test harness: the real core (router, hooks, sessions, modules,
 * SQLite storage in a temp dir) without sockets. Sessions are fakes that
 * record what the server sends them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { Clock } from "../../src/core/clock.js";
import { NS_STANZAS, type StreamError } from "../../src/core/errors.js";
import type { Jid } from "../../src/core/jid.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import { isStanza } from "../../src/core/router.js";
import { deriveCredentials } from "../../src/core/sasl/credentials.js";
import type { ClientSession } from "../../src/core/session.js";
import type { XmlElement } from "../../src/core/xml/element.js";
import { loadServerConfig } from "../../src/server/config.js";
import { SwitchboardServer } from "../../src/server/server.js";
import { freePorts } from "../helpers/server.js";

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(public t = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export class FakeSession implements ClientSession {
  static seq = 0;
  readonly id = "fake" + ++FakeSession.seq;
  readonly transport = "tcp" as const;
  readonly remoteAddress = "127.0.0.1";
  readonly connectedAt = Date.now();
  readonly secure = true;
  readonly streamId = this.id;
  /** Channel-binding data a test wants this fake connection to present. */
  bindings = new Map<string, Buffer>();
  readonly directedPresence = new Set<string>();
  readonly data = new Map<string | symbol, unknown>();
  username?: string;
  resource?: string;
  jid?: Jid;
  authenticated = true;
  bound = false;
  presence?: XmlElement;
  priority = 0;
  rosterRequested = false;
  closed = false;
  readonly attached = true;
  closeError?: StreamError;
  /** Everything the server sent, in order. */
  readonly received: XmlElement[] = [];
  private waiters: ((el: XmlElement) => void)[] = [];
  private cursor = 0;

  constructor(private readonly harness: Harness) {}

  channelBinding(type: string): Buffer | undefined {
    return this.bindings.get(type);
  }

  channelBindingTypes(): string[] {
    return [...this.bindings.keys()];
  }

  /** A fake client reads everything at once. */
  whenWritable(): Promise<void> {
    return Promise.resolve();
  }

  send(stanza: XmlElement): void {
    if (this.closed) return;
    const out = this.harness.server.services.filters.run("outbound", this, stanza);
    if (out === undefined) return;
    // Serialize-and-keep a copy: what a real client would see at this instant.
    const copy = out.clone();
    this.received.push(copy);
    const w = this.waiters.shift();
    if (w) {
      this.cursor++;
      w(copy);
    }
  }

  close(error?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    if (error) this.closeError = error;
    void this.harness.ended(this, error?.condition ?? "closed");
  }

  /** The next stanza not yet consumed by next(); waits up to `ms`. */
  next(ms = 2000): Promise<XmlElement> {
    if (this.cursor < this.received.length) return Promise.resolve(this.received[this.cursor++]!);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.jid} received nothing within ${ms} ms`));
      }, ms);
      const waiter = (el: XmlElement) => {
        clearTimeout(t);
        resolve(el);
      };
      this.waiters.push(waiter);
    });
  }

  /** Waits for the next stanza matching `pred`, skipping others. */
  async nextMatching(pred: (el: XmlElement) => boolean, ms = 2000): Promise<XmlElement> {
    const deadline = Date.now() + ms;
    for (;;) {
      const el = await this.next(Math.max(1, deadline - Date.now()));
      if (pred(el)) return el;
    }
  }

  /** Stanzas received but not yet consumed by next(). */
  pending(): XmlElement[] {
    return this.received.slice(this.cursor);
  }

  /** Sends a stanza as the client would (through the router). */
  async sendStanza(stanza: XmlElement): Promise<void> {
    if (!isStanza(stanza)) throw new Error("not a stanza");
    await this.harness.server.services.router.fromClient(this, stanza);
  }

  /** Sends an IQ and waits for the reply with the same id. */
  async iq(stanza: XmlElement, ms = 2000): Promise<XmlElement> {
    stanza.attrs.id ??= "iq" + Math.random().toString(36).slice(2);
    const id = stanza.attrs.id;
    await this.sendStanza(stanza);
    return this.nextMatching((el) => el.name === "iq" && el.attrs.id === id, ms);
  }

  /** Drops the connection the way a client disconnect does. */
  disconnect(): Promise<void> {
    this.closed = true;
    return this.harness.ended(this, "disconnected");
  }
}

export interface Harness {
  server: SwitchboardServer;
  clock: ManualClock;
  domain: string;
  dataDir: string;
  createUser(name: string, password?: string): Promise<void>;
  /** An authenticated, bound session; `available` also sends initial presence when a presence module is loaded. */
  connect(username: string, resource?: string): Promise<FakeSession>;
  ended(s: FakeSession, reason: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startHarness(opts: {
  modules: ModuleDefinition<unknown>[];
  config?: Record<string, unknown>;
  /** Also run the HTTP listener on a free loopback port, with the routes the modules contribute. */
  http?: boolean;
}): Promise<Harness> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "sb-harness-"));
  const httpPort = opts.http ? (await freePorts(1))[0] : undefined;
  const config = loadServerConfig({
    overrides: {
      domain: "example.test",
      dataDir,
      c2sPort: 0,
      c2sTlsPort: 0,
      componentPort: 0,
      s2sPort: 0,
      allowPlaintext: true,
      logLevel: "silent",
      scramIterations: 4096,
      ...(httpPort !== undefined ? { httpPort, bind: "127.0.0.1", http: { websocket: false } } : {}),
      ...opts.config,
    },
  });
  const clock = new ManualClock();
  const server = await SwitchboardServer.start(config, {
    clock,
    modules: opts.modules,
    ...(opts.http ? { http: { plugins: [], commands: [] } } : {}),
    logger: pino({ level: process.env.HARNESS_LOG ?? "silent" }),
  });
  const services = server.services;
  const harness: Harness = {
    server,
    clock,
    domain: config.domain,
    dataDir,
    async createUser(name, password = "secret") {
      const creds = deriveCredentials(password, { iterations: 4096, hashes: ["SHA-1", "SHA-256"] });
      await services.storage.accounts.create(name, creds);
      await services.hooks.fireAsync("account/created", { username: name });
    },
    async connect(username, resource) {
      const s = new FakeSession(harness);
      s.username = username;
      await services.sessions.bind(s, resource);
      s.bound = true;
      await services.hooks.fireAsync("session/bound", { session: s });
      return s;
    },
    async ended(s, reason) {
      if (!s.bound) return;
      services.sessions.unbind(s);
      await services.hooks.fireAsync("session/ended", { session: s, reason });
    },
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The defined condition of an error stanza (RFC 6120 §8.3), e.g. "service-unavailable". */
export function errorCondition(el: XmlElement): string | undefined {
  return el
    .getChild("error")
    ?.elements()
    .find((c) => c.attrs.xmlns === NS_STANZAS)?.name;
}
