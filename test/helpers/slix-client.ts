/**
 * slixmpp (Python) as a test peer: test/e2e/py/slix_driver.py runs as a child
 * process, logs in, reports every stanza as a JSON line, and runs commands the
 * test sends (high-level slixmpp calls, or raw IQs) — assertions stay here.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { WAIT_MS } from "./inbox.js";
import { BasePeer } from "./peer.js";
import { ARTIFACTS, REPO_ROOT, type TestServer } from "./server.js";
import { commandSucceeds, requirePeer } from "./services.js";
import { type Element, parseXml } from "./stanza.js";

export const PYTHON = "/usr/bin/python3";
export const DRIVER = path.join(REPO_ROOT, "test/e2e/py/slix_driver.py");

/** false when slixmpp can be used, else why the tests needing it are skipped. */
export const slixSkip = await requirePeer("python3-slixmpp", () =>
  commandSucceeds(PYTHON, ["-c", "import slixmpp"]) === true
    ? true
    : "install the Debian package python3-slixmpp (used with /usr/bin/python3)",
);

export interface SlixLogin {
  user: string;
  password: string;
  /** The served domain to log in to (default: the server's primary domain). */
  domain?: string;
  resource: string;
  directTls?: boolean;
  /**
   * The only SASL mechanism slixmpp may use (default SCRAM-SHA-256), or "auto"
   * for slixmpp's own choice. A non-PLUS SCRAM makes slixmpp act as a client
   * without channel binding (see the driver).
   */
  mechanism?: string;
  /** More slixmpp plugins to register, as an application would (e.g. "xep_0198"). */
  plugins?: string[];
}

type DriverEvent =
  | { event: "session_start"; jid: string; mechanism: string | null; tls: string | null }
  | { event: "auth_failed"; condition: string; text: string }
  | { event: "auth_exhausted" }
  | { event: "stanza"; xml: string }
  | { event: "stream_error"; condition: string; text: string; other_host?: string | null }
  | { event: "disconnected"; reason: string | null }
  | { event: "connection_failed"; reason: string }
  | { event: "reply"; id: number; ok: true; xml: string | null }
  | { event: "reply"; id: number; ok: false; error: string }
  | { event: "driver_error"; error: string }
  | { event: "session_resumed" }
  | { event: "sm_enabled"; id: string | null };

export class SlixPeer extends BasePeer {
  /** The TLS protocol version of the connection ("TLSv1.3"), as slixmpp reports it. */
  tls: string | null = null;
  /** Every SASL failure slixmpp reported, with the server's text. */
  readonly authFailures: { condition: string; text: string }[] = [];
  /** Every stream error with its text (streamErrors holds the conditions). */
  readonly streamErrorTexts: { condition: string; text: string }[] = [];
  /** What the driver reported, in order: "stanza", "auth_failed", "stream_error", … */
  readonly timeline: string[] = [];
  private nextCommand = 1;
  private readonly pending = new Map<
    number,
    { resolve: (xml: string | null) => void; reject: (e: Error) => void }
  >();
  private stderr = "";
  private exited = false;
  private readonly loginWaiters: ((e: DriverEvent) => void)[] = [];
  private cutting = false;
  /** The address of the last see-other-host stream error: slixmpp follows it by itself. */
  redirectedTo: string | undefined;

  constructor(
    readonly proc: ChildProcess,
    label: string,
    private readonly logFile: string,
  ) {
    super(label);
    createInterface({ input: proc.stdout! }).on("line", (line) => this.onLine(line));
    // The driver may exit (e.g. after a stream error) while a command is being written.
    proc.stdin!.on("error", () => undefined);
    proc.stderr!.on("data", (d: Buffer) => {
      this.stderr += d.toString();
      appendFileSync(this.logFile, d);
    });
    proc.once("exit", (code) => {
      this.exited = true;
      const why = `slixmpp driver exited with code ${code}${this.stderr ? `; stderr: ${this.stderr.slice(-1500)}` : ""}`;
      for (const p of this.pending.values()) p.reject(new Error(`${this.label}: ${why}`));
      this.pending.clear();
      for (const w of this.loginWaiters.splice(0)) w({ event: "connection_failed", reason: why });
      this.markEnded(why);
    });
  }

  private onLine(line: string): void {
    appendFileSync(this.logFile, `[${this.label}] ${line}\n`);
    let ev: DriverEvent;
    try {
      ev = JSON.parse(line) as DriverEvent;
    } catch {
      return;
    }
    if (ev.event !== "reply") this.timeline.push(ev.event);
    switch (ev.event) {
      case "stanza":
        this.stanzas.push(parseXml(ev.xml));
        break;
      case "stream_error":
        this.streamErrorTexts.push({ condition: ev.condition, text: ev.text });
        if (ev.condition === "see-other-host" && ev.other_host) this.redirectedTo = ev.other_host;
        this.streamErrors.push(ev.condition);
        break;
      case "auth_failed":
        this.authFailures.push({ condition: ev.condition, text: ev.text });
        break;
      case "reply": {
        const p = this.pending.get(ev.id);
        this.pending.delete(ev.id);
        if (!p) break;
        if (ev.ok) p.resolve(ev.xml);
        else p.reject(new Error(`${this.label}: driver command failed: ${ev.error}`));
        break;
      }
      case "disconnected":
        // After cut() the driver stays for reconnect(): the peer has not ended.
        if (!this.cutting && this.redirectedTo === undefined)
          this.markEnded(`disconnected${ev.reason ? `: ${ev.reason}` : ""}`);
        break;
      default:
        break;
    }
    if (ev.event !== "stanza" && ev.event !== "reply") {
      for (const w of this.loginWaiters.splice(0)) w(ev);
    }
  }

  /** Waits for the login outcome: session_start, or the first failure event. */
  loginOutcome(timeoutMs: number): Promise<DriverEvent> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () =>
          resolve({ event: "connection_failed", reason: `no login outcome within ${timeoutMs / 1000} s` }),
        timeoutMs,
      );
      const waiter = (e: DriverEvent) => {
        if (e.event === "disconnected" || e.event === "stream_error" || e.event === "driver_error") {
          // wait for something more telling, unless the driver is gone
          if (!this.exited && e.event !== "disconnected") {
            this.loginWaiters.push(waiter);
            return;
          }
        }
        clearTimeout(timer);
        resolve(e);
      };
      this.loginWaiters.push(waiter);
    });
  }

  /** Runs a driver command; resolves with the reply XML (null for commands that only send). */
  command(
    op: string,
    args: Record<string, unknown> = {},
    timeoutMs = WAIT_MS + 5_000,
  ): Promise<string | null> {
    if (this.exited) return Promise.reject(new Error(`${this.label}: the slixmpp driver has exited`));
    const id = this.nextCommand++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: no answer to driver command ${op} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (xml) => {
          clearTimeout(timer);
          resolve(xml);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.stdin!.write(JSON.stringify({ id, op, timeout: Math.round(WAIT_MS / 1000), ...args }) + "\n");
    });
  }

  /** A command whose reply is a stanza (an IQ result or error). */
  async request(op: string, args: Record<string, unknown> = {}): Promise<Element> {
    const xml = await this.command(op, args);
    if (xml === null) throw new Error(`${this.label}: driver command ${op} returned no stanza`);
    return parseXml(xml);
  }

  async send(stanza: Element): Promise<void> {
    await this.command("raw", { xml: stanza.toString() });
  }

  override async iq(stanza: Element): Promise<Element> {
    return this.request("iq", { xml: stanza.toString() });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    try {
      await this.command("disconnect", { wait: 2 });
    } catch {
      // the driver may exit before it answers
    }
    await Promise.race([this.ended, new Promise((r) => setTimeout(r, 5000))]);
    this.proc.stdin!.end();
    await new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      const t = setTimeout(() => {
        this.proc.kill("SIGKILL");
        resolve();
      }, 5000);
      this.proc.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The connection drops (no stream close); the driver stays, ready to reconnect(). */
  async cut(): Promise<void> {
    this.cutting = true;
    await this.command("cut");
  }

  /** Connects again after cut(): "resumed" (XEP-0198) or "started" (a new session). */
  async reconnect(): Promise<string> {
    const outcome = await this.command("reconnect", {}, 25_000);
    this.cutting = false;
    return outcome ?? "";
  }

  /** Kills the driver without a clean stream close (a dropped connection). */
  kill(): void {
    if (!this.exited) this.proc.kill("SIGKILL");
  }
}

const drivers = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of drivers) p.kill("SIGKILL");
});

function spawnDriver(
  server: TestServer,
  login: SlixLogin,
): { proc: ChildProcess; label: string; logFile: string } {
  mkdirSync(ARTIFACTS, { recursive: true });
  const args = [
    DRIVER,
    "--jid",
    `${login.user}@${login.domain ?? server.domain}/${login.resource}`,
    "--password",
    login.password,
    "--host",
    server.host,
    "--port",
    String(login.directTls ? server.c2sTlsPort : server.c2sPort),
    "--mech",
    login.mechanism ?? "SCRAM-SHA-256",
  ];
  if (login.directTls) args.push("--direct-tls");
  for (const p of login.plugins ?? []) args.push("--plugin", p);
  const proc = spawn(PYTHON, args, {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  drivers.add(proc);
  proc.once("exit", () => drivers.delete(proc));
  const label = `${login.user}/${login.resource} (slixmpp${login.directTls ? ", direct TLS" : ""})`;
  return { proc, label, logFile: server.logFile.replace(/\.log$/, ".slixmpp.log") };
}

/** Logs in with slixmpp; rejects with what happened instead. */
export async function connectSlix(server: TestServer, login: SlixLogin): Promise<SlixPeer> {
  const { proc, label, logFile } = spawnDriver(server, login);
  const peer = new SlixPeer(proc, label, logFile);
  const outcome = await peer.loginOutcome(25_000);
  if (outcome.event !== "session_start") {
    peer.kill();
    throw new Error(`${label}: login failed: ${JSON.stringify(outcome)}`);
  }
  peer.jid = outcome.jid;
  peer.mechanism = outcome.mechanism ?? "";
  peer.tls = outcome.tls;
  return peer;
}

/** A slixmpp login that must fail: returns the SASL failure condition. */
export async function slixLoginFailure(server: TestServer, login: SlixLogin): Promise<string> {
  const { proc, label, logFile } = spawnDriver(server, login);
  const peer = new SlixPeer(proc, label, logFile);
  const outcome = await peer.loginOutcome(25_000);
  peer.kill();
  if (outcome.event === "auth_failed") return outcome.condition;
  throw new Error(`${label}: expected a SASL failure, got ${JSON.stringify(outcome)}`);
}
