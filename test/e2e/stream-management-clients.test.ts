/**
 * Stream management (XEP-0198) with real clients at their defaults: @xmpp/client (stream
 * management and automatic reconnection on by default) over TCP, over WebSocket, and a
 * session started over TCP resumed over WebSocket; slixmpp (Debian) with its xep_0198
 * plugin registered as an application does. Each loses its connection without a stream
 * close; a message sent meanwhile must arrive exactly once after the resumption. A slixmpp
 * session that is not resumed hands its unacknowledged message to offline storage.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Client, client, type Element } from "@xmpp/client";
import "../helpers/js-client.js"; // accepts the self-signed certificate for STARTTLS
import { startOnline } from "../../sdk/start-online.js";
import type { TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";
import { SmRaw } from "../helpers/sm-raw.js";
import { xml } from "../helpers/stanza.js";
import { startWsServer, type WsServer } from "../helpers/ws-client.js";

const PW = { alice: "alice-smc-pw", bob: "bob-smc-pw", erin: "erin-smc-pw" };
/** Short, so the test of a session that is not resumed does not wait long; clients reconnect within 1 s. */
const RESUME_TIMEOUT_S = 5;

/** @xmpp/client as an application uses it: defaults, plus what the test watches. */
class SmJsClient {
  readonly got: Element[] = [];
  private waiters: (() => void)[] = [];
  constructor(readonly xmpp: Client) {
    xmpp.on("stanza", (el: Element) => {
      this.got.push(el);
      for (const w of this.waiters.splice(0)) w();
    });
    xmpp.on("error", () => undefined);
  }

  static async login(service: string, user: string, password: string, resource: string): Promise<SmJsClient> {
    const xmpp = client({
      service,
      domain: "localhost",
      resource,
      timeout: 10_000,
      credentials: (authenticate) => authenticate({ username: user, password }, "SCRAM-SHA-1"),
    });
    const c = new SmJsClient(xmpp);
    await startOnline(xmpp);
    await xmpp.send(xml("presence"));
    return c;
  }

  bodies(body: string): number {
    return this.got.filter((el) => el.name === "message" && el.getChildText("body") === body).length;
  }

  async waitBody(body: string, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.bodies(body) === 0) {
      if (Date.now() > deadline) throw new Error(`no message '${body}' within ${ms / 1000} s`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Drops the connection without a stream close (TCP: the socket; WebSocket: no close frame). */
  cut(): Promise<void> {
    const disconnected = new Promise<void>((r) => this.xmpp.once("disconnect", () => r()));
    // @xmpp/client wraps the connection (TLS, WebSocket); what it wraps is the real socket.
    type Inner = { destroy?: () => void; terminate?: () => void };
    const wrapper = (this.xmpp as unknown as { socket: Inner & { socket?: Inner } }).socket;
    const inner = wrapper.socket ?? wrapper;
    if (typeof inner.terminate === "function") inner.terminate();
    else inner.destroy!();
    return disconnected;
  }

  /** Resolves when @xmpp/client has resumed its stream-management session (it reconnects by itself). */
  resumed(ms = 20_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("@xmpp/client did not resume")), ms);
      this.xmpp.streamManagement.once("resumed", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    this.xmpp.reconnect.stop();
    await this.xmpp.stop().catch(() => undefined);
  }
}

async function resumeScenario(
  server: TestServer,
  first: string,
  second: string,
  resource: string,
  tag: string,
): Promise<void> {
  const alice = await SmJsClient.login(first, "alice", PW.alice, resource);
  const bob = await SmRaw.login(server, "bob", PW.bob, `sender-${resource}`);
  try {
    const sm = alice.xmpp.streamManagement;
    assert.ok(sm.enabled, "@xmpp/client enabled stream management");
    assert.ok(sm.id, "with a resumption id");
    bob.raw.write(
      `<message to='alice@localhost/${resource}' type='chat' id='${tag}-1'><body>${tag}-before</body></message>`,
    );
    await alice.waitBody(`${tag}-before`);
    const resumed = alice.resumed();
    (alice.xmpp.options as { service: string }).service = second;
    await alice.cut();
    bob.raw.write(
      `<message to='alice@localhost/${resource}' type='chat' id='${tag}-2'><body>${tag}-away</body></message>`,
    );
    await bob.sync();
    await resumed;
    await alice.waitBody(`${tag}-away`);
    // A round trip on the resumed stream, then nothing more may come.
    await alice.xmpp.iqCaller.request(
      xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(alice.bodies(`${tag}-away`), 1, "the message sent while away arrives exactly once");
    assert.equal(alice.bodies(`${tag}-before`), 1, "what was acknowledged is not sent again");
  } finally {
    await alice.stop();
    await bob.closeCleanly();
  }
}

describe("stream management with @xmpp/client and slixmpp", () => {
  let web: WsServer;
  let tcpService: string;
  before(async () => {
    web = await startWsServer({
      name: "stream-management-clients",
      users: PW,
      config: { streamManagement: { resumeTimeoutSeconds: RESUME_TIMEOUT_S } },
    });
    tcpService = `xmpp://127.0.0.1:${web.server.c2sPort}`;
  });
  after(async () => {
    await web?.server.stop();
  });

  test("@xmpp/client over TCP resumes after its connection is cut; a message sent meanwhile arrives once", async () => {
    await resumeScenario(web.server, tcpService, tcpService, "tcp", "tcp");
  });

  test("@xmpp/client over WebSocket resumes after its connection is cut", async () => {
    await resumeScenario(web.server, web.wsUrl, web.wsUrl, "ws", "ws");
  });

  test("a session started over TCP is resumed over WebSocket", async () => {
    await resumeScenario(web.server, tcpService, web.wsUrl, "roaming", "roam");
  });

  describe("slixmpp with xep_0198", { skip: slixSkip }, () => {
    test("resumes after its TCP connection is cut; a message sent meanwhile arrives once", async () => {
      const erin = await connectSlix(web.server, {
        user: "erin",
        password: PW.erin,
        resource: "slix",
        plugins: ["xep_0198"],
      });
      const bob = await SmRaw.login(web.server, "bob", PW.bob, "sender-slix");
      try {
        await erin.command("presence");
        const state = JSON.parse((await erin.command("sm_state")) ?? "{}") as { id?: string };
        assert.ok(state.id, `slixmpp enabled resumable stream management: ${JSON.stringify(state)}`);
        bob.raw.write(
          "<message to='erin@localhost/slix' type='chat' id='s1'><body>slix-before</body></message>",
        );
        await erin.next((el) => el.getChildText("body") === "slix-before", "the first message");
        await erin.cut();
        bob.raw.write(
          "<message to='erin@localhost/slix' type='chat' id='s2'><body>slix-away</body></message>",
        );
        await bob.sync();
        assert.equal(await erin.reconnect(), "resumed");
        await erin.next((el) => el.getChildText("body") === "slix-away", "the message sent while away");
        await erin.none((el) => el.getChildText("body") === "slix-away", "a second copy");
        await erin.none((el) => el.getChildText("body") === "slix-before", "the acknowledged message again");
      } finally {
        await erin.close();
        await bob.closeCleanly();
      }
    });

    test("a session cut and not resumed puts its unacknowledged message in offline storage", async () => {
      const erin = await connectSlix(web.server, {
        user: "erin",
        password: PW.erin,
        resource: "gone",
        plugins: ["xep_0198"],
      });
      const bob = await SmRaw.login(web.server, "bob", PW.bob, "sender-gone");
      try {
        await erin.command("presence");
        await erin.cut();
        bob.raw.write(
          "<message to='erin@localhost/gone' type='chat' id='g1'><body>slix-never-read</body></message>",
        );
        await bob.sync();
      } finally {
        erin.kill();
      }
      // Not resumed: the server ends the session at its resumption timeout.
      await new Promise((r) => setTimeout(r, (RESUME_TIMEOUT_S + 1) * 1000));
      const again = await connectSlix(web.server, { user: "erin", password: PW.erin, resource: "back" });
      try {
        await again.command("presence");
        const m = await again.next(
          (el) => el.getChildText("body") === "slix-never-read",
          "the message, again",
        );
        assert.ok(m.getChild("delay", "urn:xmpp:delay"), "stamped as delayed");
        await again.none((el) => el.getChildText("body") === "slix-never-read", "a second copy");
      } finally {
        await again.close();
        await bob.closeCleanly();
      }
    });
  });
});
