/**
 * A real gateway into another network: Biboumi (Debian's XMPP↔IRC gateway) attached as a
 * component, ngIRCd (Debian) as the IRC network, both started here on loopback. A
 * Switchboard user joins an IRC channel through the gateway and talks with an IRC client.
 * Under `enforce` the gateway needs a gateway licence: without one it is detached and cannot
 * attach again; with one it attaches; revoking it detaches Biboumi within a second.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { cli, policySet } from "../helpers/licensed-setup.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { commandSucceeds, requirePeer } from "../helpers/services.js";
import { xml } from "../helpers/stanza.js";

const skip = await requirePeer("biboumi and ngircd", () => {
  for (const bin of ["biboumi", "ngircd"]) {
    if (commandSucceeds("sh", ["-c", `command -v ${bin}`]) !== true)
      return "install the Debian packages biboumi and ngircd";
  }
  return true;
});

const GATEWAY = "irc.localhost";
const SECRET = "biboumi-shared-secret-0123";
/** ngIRCd listens on a loopback address of its own, so its usual port cannot clash. */
const IRC_HOST = "127.0.0.77";
const IRC_PORT = 6667;
const CHANNEL = `#switchboard%${IRC_HOST}@${GATEWAY}`;
const PW = { alice: "alice-gateway-pw" };

/** A minimal IRC client: enough to register, join and talk. */
class IrcClient {
  private buffer = "";
  readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.buffer += d;
      let i = this.buffer.indexOf("\r\n");
      while (i >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 2);
        if (line.startsWith("PING")) this.send(`PONG${line.slice(4)}`);
        this.lines.push(line);
        i = this.buffer.indexOf("\r\n");
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on("error", () => undefined);
  }

  static async connect(nick: string): Promise<IrcClient> {
    const socket = net.connect({ host: IRC_HOST, port: IRC_PORT });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    const c = new IrcClient(socket);
    c.send(`NICK ${nick}`);
    c.send(`USER ${nick} 0 * :${nick}`);
    await c.waitFor(/^:\S+ 001 /, "registration");
    return c;
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  async waitFor(re: RegExp, what: string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    for (;;) {
      for (; from < this.lines.length; from++) if (re.test(this.lines[from]!)) return this.lines[from]!;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `IRC client: no ${what} within ${timeoutMs} ms; got:\n${this.lines.slice(-15).join("\n")}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.send("QUIT :bye");
    this.socket.end();
  }
}

function run(command: string, args: string[], logFile: string): ChildProcess {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  child.stdout?.on("data", (d: Buffer) => chunks.push(d));
  child.stderr?.on("data", (d: Buffer) => chunks.push(d));
  child.once("exit", () => {
    try {
      writeFileSync(logFile, Buffer.concat(chunks));
    } catch {
      // the log is a convenience
    }
  });
  return child;
}

describe("an IRC gateway (Biboumi) as a component, with ngIRCd", { skip }, () => {
  let server: TestServer;
  let dir: string;
  let ircd: ChildProcess;
  let biboumi: ChildProcess;
  let alice: JsPeer;
  let bob: IrcClient;

  let biboumiRuns = 0;
  function startBiboumi(): void {
    biboumi = run("biboumi", [path.join(dir, "biboumi.cfg")], path.join(dir, `biboumi-${++biboumiRuns}.log`));
  }
  const running = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;
  const refusals = () =>
    (readFileSync(server.logFile, "utf8").match(/"msg":"component refused"/g) ?? []).length;

  /** Is the gateway attached, as the server's disco#items says? */
  async function attached(): Promise<boolean> {
    const items = await alice.iq(
      xml(
        "iq",
        { type: "get", to: "localhost" },
        xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }),
      ),
    );
    return (
      items
        .getChild("query")
        ?.getChildren("item")
        .some((i) => i.attrs.jid === GATEWAY) === true
    );
  }

  /** Waits until the gateway is (or is no longer) attached; resolves with the time it took. */
  async function waitAttached(want: boolean, timeoutMs: number): Promise<number> {
    const start = Date.now();
    for (;;) {
      if ((await attached()) === want) return Date.now() - start;
      if (Date.now() - start > timeoutMs)
        throw new Error(
          `biboumi is ${want ? "not " : "still "}attached after ${timeoutMs} ms; server log:\n${server.logTail()}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-gateway-"));
    writeFileSync(
      path.join(dir, "ngircd.conf"),
      [
        "[Global]",
        "Name = irc.test",
        "Info = Switchboard gateway test",
        `Listen = ${IRC_HOST}`,
        `Ports = ${IRC_PORT}`,
        "MotdPhrase = test",
        `PidFile = ${path.join(dir, "ngircd.pid")}`,
        "ServerUID = 65534",
        "ServerGID = 65534",
        "[Options]",
        "Ident = no",
        "PAM = no",
        "DNS = no",
        "[Limits]",
        "MaxConnectionsIP = 0",
        "",
      ].join("\n"),
    );
    ircd = run("ngircd", ["-n", "-f", path.join(dir, "ngircd.conf")], path.join(dir, "ngircd.log"));
    const [componentPort] = (await freePorts(1)) as [number];
    server = await startServer({
      name: "gateway-irc",
      users: PW,
      extraArgs: ["--component-port", String(componentPort), "--log-level", "info"],
    });
    await cli(server, ["component", "add", GATEWAY, "--secret", SECRET]);
    writeFileSync(
      path.join(dir, "biboumi.cfg"),
      [
        `hostname=${GATEWAY}`,
        `password=${SECRET}`,
        "xmpp_server_ip=127.0.0.1",
        `port=${componentPort}`,
        "identd_port=0",
        `db_name=${path.join(dir, "biboumi.sqlite")}`,
        `policy_directory=${dir}`,
        "log_level=0",
        "",
      ].join("\n"),
    );
    startBiboumi();
    // The gateway is attached when the server lists it.
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "desk" });
    await alice.send(xml("presence"));
    await waitAttached(true, 15_000);
    bob = await IrcClient.connect("ircbob");
    bob.send("JOIN #switchboard");
    await bob.waitFor(/ JOIN :?#switchboard/, "bob's own join");
  });

  after(async () => {
    alice?.close();
    bob?.close();
    biboumi?.kill("SIGTERM");
    ircd?.kill("SIGTERM");
    if (server) await server.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the gateway answers disco from the user's client through the server", async () => {
    const info = await alice.iq(
      xml(
        "iq",
        { type: "get", to: GATEWAY },
        xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
      ),
    );
    assert.equal(info.attrs.type, "result", info.toString());
    assert.ok(info.getChild("query")?.getChildren("identity").length, info.toString());
  });

  test("a Switchboard user joins an IRC channel and talks with an IRC user both ways", async () => {
    await alice.send(
      xml("presence", { to: `${CHANNEL}/alice` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })),
    );
    await alice.next(
      (el) =>
        el.name === "presence" &&
        el.attrs.from === `${CHANNEL}/alice` &&
        el.getChild("x", "http://jabber.org/protocol/muc#user") !== undefined,
      "the channel's self-presence",
      20_000,
    );
    await bob.waitFor(/ JOIN :?#switchboard/, "alice joining on IRC");
    await alice.send(xml("message", { to: CHANNEL, type: "groupchat" }, xml("body", {}, "hello from xmpp")));
    await bob.waitFor(/PRIVMSG #switchboard :hello from xmpp/, "alice's message on IRC");
    bob.send("PRIVMSG #switchboard :hello from irc");
    const got = await alice.next(
      (el) => el.name === "message" && el.getChildText("body") === "hello from irc",
      "bob's message through the gateway",
      15_000,
    );
    assert.equal(got.attrs.from, `${CHANNEL}/ircbob`);
    assert.equal(got.attrs.type, "groupchat");
  });

  test("under enforce Biboumi needs a gateway licence: detached and refused without one, attached with one, detached when it is revoked", async () => {
    // alice's own client proves no licence: she is exempt, so that only the gateway is under the policy.
    await policySet(server, "--mode", "enforce", "--exempt", "alice");
    await waitAttached(false, 5000);
    // Biboumi retries (or is restarted): every attempt is refused at its handshake.
    const refusedBefore = refusals();
    if (!running(biboumi)) startBiboumi();
    const deadline = Date.now() + 20_000;
    while (refusals() === refusedBefore && Date.now() < deadline) {
      if (!running(biboumi)) startBiboumi();
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(
      server.logTail(),
      /holds no gateway licence/,
      "Biboumi's attempt refused for want of a licence",
    );
    assert.equal(await attached(), false);

    const granted = (await cli(server, ["licence", "grant", GATEWAY, "--scope", "gateway"])) as {
      licence: { id: string };
    };
    const attachBy = Date.now() + 30_000;
    while (!(await attached())) {
      if (Date.now() > attachBy)
        throw new Error(`biboumi did not attach with a licence:\n${server.logTail()}`);
      if (!running(biboumi)) startBiboumi();
      await new Promise((r) => setTimeout(r, 250));
    }

    await cli(server, ["licence", "revoke", granted.licence.id]);
    const took = await waitAttached(false, 5000);
    assert.ok(took < 1500, `detached ${took} ms after the command returned`);
  });
});
