/**
 * Virtual hosts: one server serving public.example (primary) and corp.example, each with its
 * own accounts and certificate. The same localpart on both domains is two accounts (rosters,
 * offline messages and archives apart); accounts on the two hosts chat and subscribe to each
 * other through local routing; the stream's 'to' selects the host (an unknown one is
 * host-unknown); the SNI name selects the certificate on STARTTLS and on direct TLS; slixmpp
 * at its defaults logs into the second host.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { connectJs, type JsPeer, jsLoginFailure } from "../helpers/js-client.js";
import { RawConnection, streamHeader } from "../helpers/raw-client.js";
import { rosterGet, rosterJids } from "../helpers/roster.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, NS, newId, xml } from "../helpers/stanza.js";

const PRIMARY = "public.example";
const CORP = "corp.example";
const PW = {
  alicePublic: "alice-public-pw",
  aliceCorp: "alice-corp-pw",
  bobCorp: "bob-corp-pw",
  carolCorp: "carol-corp-pw",
};
const MAM = "urn:xmpp:mam:2";

function chat(to: string, body: string): Element {
  return xml("message", { to, type: "chat", id: newId("msg") }, xml("body", {}, body));
}

/** The bodies of the messages an account's archive holds. */
async function archivedBodies(peer: JsPeer): Promise<string[]> {
  const queryid = newId("q");
  const reply = await peer.iq(xml("iq", { type: "set" }, xml("query", { xmlns: MAM, queryid })));
  assert.equal(reply.attrs.type, "result", `archive query: ${reply}`);
  return peer.stanzas
    .all()
    .filter((m) => m.name === "message" && m.getChild("result", MAM)?.attrs.queryid === queryid)
    .map(
      (m) =>
        m.getChild("result", MAM)?.getChild("forwarded")?.getChild("message")?.getChildText("body") ?? "",
    );
}

/** The certificate a TLS handshake with this SNI name gets on direct TLS. */
async function directTlsCertificate(server: TestServer, servername: string): Promise<X509Certificate> {
  const socket = tls.connect({
    host: server.host,
    port: server.c2sTlsPort,
    servername,
    rejectUnauthorized: false,
    ALPNProtocols: ["xmpp-client"],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    });
    return new X509Certificate(socket.getPeerX509Certificate()!.raw);
  } finally {
    socket.destroy();
  }
}

/** The certificate STARTTLS gets on the c2s port when the stream and the SNI name are for `domain`. */
async function startTlsCertificate(server: TestServer, domain: string): Promise<X509Certificate> {
  const raw = await RawConnection.open(server, { label: `STARTTLS to ${domain}` });
  try {
    await raw.openStream(domain);
    await raw.startTls(domain);
    const peer = raw.tlsSocket?.getPeerX509Certificate();
    assert.ok(peer, "no certificate after STARTTLS");
    return peer;
  } finally {
    raw.destroy();
  }
}

function assertNames(cert: X509Certificate, domain: string, label: string): void {
  assert.match(
    cert.subject,
    new RegExp(`CN=${domain.replace(".", "\\.")}$`, "m"),
    `${label}: ${cert.subject}`,
  );
  assert.ok(cert.subjectAltName?.includes(`DNS:${domain}`), `${label}: SAN ${cert.subjectAltName}`);
  assert.ok(cert.checkHost(domain), `${label}: the certificate is not valid for ${domain}`);
}

describe("virtual hosts", () => {
  let server: TestServer;
  let configFile: string;
  let alicePublic: JsPeer;
  let bobCorp: JsPeer;

  /** An admin command on this server's data and configuration (which lists the hosts). */
  const cli = (...args: string[]) =>
    runCli([...args, ...server.storageArgs(), "--config", configFile], server.logFile);

  before(async () => {
    server = await startServer({
      name: "virtual-hosts",
      domain: PRIMARY,
      config: { domain: PRIMARY, hosts: [CORP] },
    });
    configFile = path.join(server.dataDir, "e2e-config.yaml");
    await cli("user", "add", "alice", "--password", PW.alicePublic);
    await cli("user", "add", `alice@${CORP}`, "--password", PW.aliceCorp);
    await cli("user", "add", `bob@${CORP}`, "--password", PW.bobCorp);
    await cli("user", "add", `carol@${CORP}`, "--password", PW.carolCorp);
    alicePublic = await connectJs(server, { user: "alice", password: PW.alicePublic, resource: "pub" });
    bobCorp = await connectJs(server, { user: "bob", domain: CORP, password: PW.bobCorp, resource: "corp" });
    // Both ask for their rosters: approvals and pushes go to interested resources (RFC 6121 §2.1.6).
    await rosterGet(alicePublic);
    await rosterGet(bobCorp);
    await alicePublic.send(xml("presence"));
    await bobCorp.send(xml("presence"));
  });
  after(async () => {
    await alicePublic?.close();
    await bobCorp?.close();
    await server.stop();
  });

  test("accounts get JIDs on their own host", () => {
    assert.equal(alicePublic.jid, `alice@${PRIMARY}/pub`);
    assert.equal(bobCorp.jid, `bob@${CORP}/corp`);
  });

  test("the admin commands name accounts on either host and refuse other domains", async () => {
    const shown = await cli("user", "show", `bob@${CORP}`);
    assert.match(shown, new RegExp(`^bob@${CORP.replace(".", "\\.")}$`, "m"));
    await assert.rejects(
      cli("user", "add", "dave@elsewhere.example", "--password", "dave-pw-123"),
      /not a domain served here/,
    );
    await assert.rejects(cli("user", "show", "bob"), /no account bob@public\.example/);
  });

  test("the same localpart on two hosts is two accounts with their own passwords", async () => {
    const wrong = await jsLoginFailure(server, { user: "alice", domain: CORP, password: PW.alicePublic });
    assert.equal(wrong, "not-authorized", "alice@corp.example with alice@public.example's password");
    assert.equal(
      await jsLoginFailure(server, { user: "bob", password: PW.bobCorp }),
      "not-authorized",
      "bob exists on corp.example only",
    );
  });

  test("cross-host subscription both ways, presence and chat (local routing)", async () => {
    const BOB = `bob@${CORP}`;
    const ALICE = `alice@${PRIMARY}`;
    await alicePublic.send(xml("presence", { to: BOB, type: "subscribe" }));
    await bobCorp.next(is.presence({ from: ALICE, type: "subscribe" }), "alice's subscription request");
    await bobCorp.send(xml("presence", { to: ALICE, type: "subscribed" }));
    await alicePublic.next(is.presence({ from: BOB, type: "subscribed" }), "the approval");
    await alicePublic.next(is.presence({ from: bobCorp.jid }), "bob's presence after the approval");
    await bobCorp.send(xml("presence", { to: ALICE, type: "subscribe" }));
    await alicePublic.next(is.presence({ from: BOB, type: "subscribe" }), "bob's request");
    await alicePublic.send(xml("presence", { to: BOB, type: "subscribed" }));
    await bobCorp.next(is.presence({ from: alicePublic.jid }), "alice's presence after the approval");

    const aliceRoster = await rosterGet(alicePublic);
    const item = aliceRoster
      .getChild("query", NS.roster)
      ?.getChildren("item")
      .find((i) => i.attrs.jid === BOB);
    assert.equal(item?.attrs.subscription, "both", `alice's roster: ${aliceRoster}`);

    await alicePublic.send(chat(BOB, "hello corp"));
    const got = await bobCorp.next(is.message({ body: "hello corp" }), "alice's message");
    assert.equal(got.attrs.from, alicePublic.jid);
    await bobCorp.send(chat(alicePublic.jid, "hello public"));
    await alicePublic.next(is.message({ from: bobCorp.jid, body: "hello public" }), "bob's answer");

    // A presence change reaches the subscriber on the other host. (Bob's presence may reach
    // alice once more before it: her approval, given while subscribed to him, probed him again.)
    await bobCorp.send(xml("presence", {}, xml("show", {}, "away")));
    const away = await alicePublic.next(
      (el) => is.presence({ from: bobCorp.jid })(el) && el.getChildText("show") === "away",
      "bob's new presence",
    );
    assert.equal(away.attrs.type, undefined);
  });

  test("alice@corp.example has her own roster, offline queue and archive", async () => {
    const ALICE_CORP = `alice@${CORP}`;
    // Offline for alice@corp.example: alice@public.example, online, must not get it.
    await bobCorp.send(chat(ALICE_CORP, "for the corp alice"));
    await alicePublic.none(is.message({ body: "for the corp alice" }), "a message for alice@corp.example");
    const aliceCorp = await connectJs(server, {
      user: "alice",
      domain: CORP,
      password: PW.aliceCorp,
      resource: "corp",
    });
    try {
      assert.equal(aliceCorp.jid, `${ALICE_CORP}/corp`);
      assert.deepEqual(rosterJids(await rosterGet(aliceCorp)), [], "alice@corp.example's roster");
      await aliceCorp.send(xml("presence"));
      const offline = await aliceCorp.next(is.message({ body: "for the corp alice" }), "the offline message");
      assert.equal(offline.getChild("delay", NS.delay)?.attrs.from, CORP, "stored by the corp.example host");
      // The archives: alice@public.example's holds her chat with bob, alice@corp.example's only hers.
      const corpArchive = await archivedBodies(aliceCorp);
      assert.deepEqual(corpArchive, ["for the corp alice"]);
      const publicArchive = await archivedBodies(alicePublic);
      assert.ok(publicArchive.includes("hello corp"), `alice@public.example's archive: ${publicArchive}`);
      assert.ok(
        !publicArchive.includes("for the corp alice"),
        `alice@public.example's archive: ${publicArchive}`,
      );
      // vCards are per account too.
      const card = xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "Alice of Corp"));
      assert.equal((await aliceCorp.iq(xml("iq", { type: "set" }, card))).attrs.type, "result");
      const publicCard = await alicePublic.iq(xml("iq", { type: "get" }, xml("vCard", { xmlns: NS.vcard })));
      assert.equal(publicCard.getChild("vCard", NS.vcard)?.getChildText("FN"), null, `${publicCard}`);
    } finally {
      await aliceCorp.close();
    }
  });

  test("SNI selects the host's certificate on direct TLS and on STARTTLS", async () => {
    assertNames(await directTlsCertificate(server, CORP), CORP, "direct TLS, SNI corp.example");
    assertNames(await directTlsCertificate(server, PRIMARY), PRIMARY, "direct TLS, SNI public.example");
    assertNames(await startTlsCertificate(server, CORP), CORP, "STARTTLS, SNI corp.example");
    assertNames(await startTlsCertificate(server, PRIMARY), PRIMARY, "STARTTLS, SNI public.example");
    // Without SNI (or with a name not served) the primary domain's certificate is served.
    assertNames(await directTlsCertificate(server, "unknown.example"), PRIMARY, "direct TLS, unknown SNI");
  });

  test("a stream to a domain not served here gets host-unknown", async () => {
    const raw = await RawConnection.open(server, { label: "stream to nowhere.example" });
    try {
      raw.write(streamHeader("nowhere.example"));
      assert.equal(await raw.streamError("the stream error"), "host-unknown");
    } finally {
      raw.destroy();
    }
  });

  test("slixmpp at its defaults logs into corp.example and chats across hosts", {
    skip: slixSkip,
  }, async () => {
    const carol = await connectSlix(server, {
      user: "carol",
      domain: CORP,
      password: PW.carolCorp,
      resource: "slix",
      mechanism: "auto",
    });
    try {
      assert.equal(carol.jid, `carol@${CORP}/slix`);
      await carol.command("message", { to: alicePublic.jid, body: "from carol at corp" });
      const got = await alicePublic.next(is.message({ body: "from carol at corp" }), "carol's message");
      assert.equal(got.attrs.from, carol.jid);
      await alicePublic.send(chat(carol.jid, "back to carol"));
      await carol.next(is.message({ from: alicePublic.jid, body: "back to carol" }), "alice's answer");
    } finally {
      await carol.close();
    }
  });
});
