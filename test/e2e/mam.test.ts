/**
 * Message archive management (XEP-0313) with real clients over a few hundred messages:
 * @xmpp/client sends 300 messages to a slixmpp user, then both read their archives —
 * @xmpp/client page by page with RSM forwards and backwards (complete on the last page
 * only, count, first/last), slixmpp with its xep_0313 plugin's RSM iterator both ways.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, NS, newId, xml } from "../helpers/stanza.js";

const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const N = 300;
const PW = { alice: "alice-mam-pw", bob: "bob-mam-pw" };

interface Page {
  bodies: string[];
  ids: string[];
  complete: boolean;
  first?: string;
  last?: string;
  count?: number;
}

/** One archive query from @xmpp/client: the result messages for its queryid, then the <fin/>. */
async function page(peer: JsPeer, set: Element[], withJid?: string): Promise<Page> {
  const queryid = newId("q");
  const form = withJid
    ? [
        xml(
          "x",
          { xmlns: "jabber:x:data", type: "submit" },
          xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, MAM)),
          xml("field", { var: "with" }, xml("value", {}, withJid)),
        ),
      ]
    : [];
  const reply = await peer.iq(
    xml(
      "iq",
      { type: "set" },
      xml("query", { xmlns: MAM, queryid }, ...form, xml("set", { xmlns: RSM }, ...set)),
    ),
  );
  assert.equal(reply.attrs.type, "result", `query: ${reply}`);
  const results = peer.stanzas
    .all()
    .filter((m) => m.name === "message" && m.getChild("result", MAM)?.attrs.queryid === queryid);
  peer.stanzas.drain();
  const fin = reply.getChild("fin", MAM)!;
  const rsm = fin.getChild("set", RSM)!;
  return {
    bodies: results.map(
      (m) =>
        m
          .getChild("result", MAM)!
          .getChild("forwarded", "urn:xmpp:forward:0")!
          .getChild("message")!
          .getChildText("body")!,
    ),
    ids: results.map((m) => m.getChild("result", MAM)!.attrs.id!),
    complete: fin.attrs.complete === "true",
    ...(rsm.getChild("first") ? { first: rsm.getChildText("first")! } : {}),
    ...(rsm.getChild("last") ? { last: rsm.getChildText("last")! } : {}),
    ...(rsm.getChild("count") ? { count: Number(rsm.getChildText("count")) } : {}),
  };
}

const max = (n: number) => xml("max", {}, String(n));
const expected = Array.from({ length: N }, (_, i) => `archived ${i + 1}`);

describe("message archive paging over a few hundred messages", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: JsPeer;
  let bob: SlixPeer;

  before(async () => {
    server = await startServer({ name: "mam", users: PW });
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "phone" });
    await bob.command("presence");
    await bob.sync();
    for (const body of expected)
      await alice.send(
        xml("message", { to: "bob@localhost", type: "chat", id: newId() }, xml("body", {}, body)),
      );
    await bob.next(is.message({ body: `archived ${N}` }), "the last of the messages", 30_000);
    await alice.sync();
    alice.stanzas.drain();
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await server?.stop();
  });

  test("the archive is advertised on the account JID", async () => {
    const info = await alice.iq(
      xml("iq", { type: "get", to: "alice@localhost" }, xml("query", { xmlns: NS.discoInfo })),
    );
    const features = info
      .getChild("query", NS.discoInfo)!
      .getChildren("feature")
      .map((f) => f.attrs.var);
    assert.ok(features.includes(MAM) && features.includes(`${MAM}#extended`), `features: ${features}`);
  });

  test("@xmpp/client pages forwards with RSM <after/>: complete on the last page only", async () => {
    const bodies: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const p = await page(alice, [max(70), ...(after ? [xml("after", {}, after)] : [])], "bob@localhost");
      pages++;
      bodies.push(...p.bodies);
      assert.equal(p.count, N);
      assert.equal(p.first, p.ids[0]);
      assert.equal(p.last, p.ids.at(-1));
      if (p.complete) break;
      assert.equal(p.bodies.length, 70, "a full page before the last");
      after = p.last;
    }
    assert.equal(pages, Math.ceil(N / 70));
    assert.deepEqual(bodies, expected);
  });

  test("@xmpp/client pages backwards from the end with RSM <before/>", async () => {
    const bodies: string[] = [];
    let before = "";
    let pages = 0;
    for (;;) {
      const p = await page(alice, [max(100), xml("before", {}, before)]);
      pages++;
      bodies.unshift(...p.bodies);
      if (p.complete) break;
      before = p.first!;
    }
    assert.equal(pages, 3);
    assert.deepEqual(bodies, expected);
    const last = await page(alice, [max(5), xml("before", {})]);
    assert.deepEqual(last.bodies, expected.slice(-5), "the last page, in chronological order");
    assert.equal(last.complete, false);
  });

  test("slixmpp's xep_0313 iterator reads the recipient's archive forwards and backwards", async () => {
    const forward = JSON.parse((await bob.command("mam", { with: "alice@localhost", max: 40 }, 60_000))!) as [
      string,
      string,
    ][];
    assert.deepEqual(
      forward.map(([, body]) => body),
      expected,
    );
    assert.equal(new Set(forward.map(([id]) => id)).size, N, "each message has its own archive id");
    const backward = JSON.parse((await bob.command("mam", { max: 80, reverse: true }, 60_000))!) as [
      string,
      string,
    ][];
    assert.deepEqual(
      backward.map(([, body]) => body),
      [...expected].reverse(),
    );
    const received = bob.stanzas.all().find((m) => m.getChildText("body") === "archived 1");
    assert.equal(
      received?.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.id,
      forward[0]![0],
      "the live message carried its archive id",
    );
  });
});
