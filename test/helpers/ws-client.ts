/**
 * XMPP over WebSocket in tests: the real server with its HTTP listener (where
 * /xmpp-websocket lives), @xmpp/client with a ws:// or wss:// service URL (it uses
 * the global WebSocket, which Node 20 has only behind a flag: the `ws` package's
 * stands in for it), and a raw WebSocket client for framing tests.
 */

import { type Client, client } from "@xmpp/client";
import { WebSocket } from "ws";
import { startOnline } from "../../sdk/start-online.js";
import { JsPeer } from "./js-client.js";
import { freePorts, type ServerOptions, startServer, type TestServer } from "./server.js";

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

export interface WsServer {
  server: TestServer;
  httpPort: number;
  /** http://127.0.0.1:PORT (https:// with `https`). */
  baseUrl: string;
  /** ws://127.0.0.1:PORT/xmpp-websocket (wss:// with `https`). */
  wsUrl: string;
}

/** The server with its HTTP listener on a free port; `https` serves it with the self-signed certificate. */
export async function startWsServer(opts: ServerOptions & { https?: boolean }): Promise<WsServer> {
  const [httpPort] = (await freePorts(1)) as [number];
  const { https, ...rest } = opts;
  const server = await startServer({
    ...rest,
    extraArgs: [...(opts.extraArgs ?? []), "--http-port", String(httpPort)],
    ...(https
      ? { config: { ...opts.config, http: { ...(opts.config?.http as object | undefined), tls: "on" } } }
      : {}),
  });
  const scheme = https ? "https" : "http";
  const baseUrl = `${scheme}://127.0.0.1:${httpPort}`;
  await waitForHttp(baseUrl, server);
  return {
    server,
    httpPort,
    baseUrl,
    wsUrl: `${https ? "wss" : "ws"}://127.0.0.1:${httpPort}/xmpp-websocket`,
  };
}

async function waitForHttp(baseUrl: string, server: TestServer): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseUrl}/.well-known/host-meta`);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no answer from ${baseUrl} (${last}); log ${server.logFile}:\n${server.logTail()}`);
}

export interface WsLogin {
  user: string;
  password: string;
  resource?: string;
  mechanism?: "SCRAM-SHA-1" | "PLAIN";
}

export function wsClient(wsUrl: string, login: WsLogin, onOffer?: (mechanisms: string[]) => void): Client {
  const mechanism = login.mechanism ?? "SCRAM-SHA-1";
  return client({
    service: wsUrl,
    domain: "localhost",
    ...(login.resource !== undefined ? { resource: login.resource } : {}),
    timeout: 10_000,
    credentials: async (authenticate, mechanisms) => {
      onOffer?.(mechanisms);
      if (!mechanisms.includes(mechanism)) {
        throw new Error(`the server did not offer ${mechanism} (offered: ${mechanisms.join(", ")})`);
      }
      await authenticate({ username: login.user, password: login.password }, mechanism);
    },
  });
}

/** Logs in with @xmpp/client over WebSocket. */
export async function connectWs(wsUrl: string, login: WsLogin): Promise<JsPeer> {
  let offered: string[] = [];
  const xmpp = wsClient(wsUrl, login, (m) => {
    offered = m;
  });
  const peer = new JsPeer(xmpp, `${login.user}/${login.resource ?? "?"} (@xmpp/client, WebSocket)`);
  try {
    const jid = await withTimeout(startOnline(xmpp), 20_000, `${peer.label}: login`);
    peer.jid = jid.toString();
  } catch (err) {
    await stopAfterRefusal(xmpp);
    throw new Error(`${peer.label}: login failed: ${(err as Error).message}`);
  }
  peer.mechanism = login.mechanism ?? "SCRAM-SHA-1";
  peer.offeredMechanisms = offered;
  return peer;
}

/**
 * Stops a client whose login the server refused. The server closes the stream after its
 * refusal (the SASL failure, then the stream error and <close/>). @xmpp/client 0.14's stop()
 * in between makes it detach its parser, and the server's <close/> arriving after that throws
 * inside the library (`this.parser` is null): let the server's close arrive first.
 */
export async function stopAfterRefusal(xmpp: Client, waitMs = 2000): Promise<void> {
  if (xmpp.status !== "offline" && xmpp.status !== "disconnect") {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      xmpp.once("disconnect", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  await xmpp.stop().catch(() => undefined);
}

/** A WebSocket speaking raw text messages: what the server sends is kept in order. */
export class RawWs {
  readonly received: string[] = [];
  private waiters: (() => void)[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.received.push(data.toString());
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closeCode = code;
        for (const w of this.waiters.splice(0)) w();
        resolve({ code, reason: reason.toString() });
      });
    });
    ws.on("error", () => undefined);
  }

  /** Opens a connection; rejects with the HTTP status when the upgrade is refused. */
  static open(
    url: string,
    opts: { protocols?: string[]; headers?: Record<string, string> } = {},
  ): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, opts.protocols ?? ["xmpp"], {
        rejectUnauthorized: false,
        ...(opts.headers ? { headers: opts.headers } : {}),
      });
      const raw = new RawWs(ws);
      ws.once("open", () => resolve(raw));
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d.toString();
        });
        res.on("end", () =>
          reject(
            Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body }),
          ),
        );
      });
      ws.once("error", reject);
    });
  }

  send(text: string | Buffer, binary = false): void {
    this.ws.send(text, { binary });
  }

  /** Waits for the first message (from `from` on) matching `re`; returns its index and text. */
  async waitFor(
    re: RegExp,
    what: string,
    from = 0,
    timeoutMs = 10_000,
  ): Promise<{ index: number; text: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex((m, i) => i >= from && re.test(m));
      if (index >= 0) return { index, text: this.received[index]! };
      if (this.closeCode !== undefined || Date.now() > deadline) {
        throw new Error(
          `${what}: no message matching ${re} (${this.closeCode !== undefined ? `closed with ${this.closeCode}` : "timed out"}); received:\n${this.received.join("\n")}`,
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Sends <open/> and waits for the server's <open/> and its stream features. */
  async openStream(from = this.received.length): Promise<{ open: string; features: string }> {
    this.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
    const open = await this.waitFor(/^<open /, "the server's <open/>", from);
    const features = await this.waitFor(/^<stream:features/, "stream features", open.index + 1);
    return { open: open.text, features: features.text };
  }

  terminate(): void {
    this.ws.terminate();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]);
}
