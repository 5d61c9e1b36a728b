/**
 * The language of a client's stream (RFC 6120 §4.7.4, §8.1.5): stanzas it sends without
 * xml:lang reach their recipients with the language its stream header declared, or the
 * server's (en, which the response header announces) when it declared none; one it sets
 * itself is kept.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";

const PW = { alice: "alice-language-pw", bob: "bob-language-pw", carol: "carol-language-pw" };
let server: TestServer;
let alice: RawConnection;
let bob: RawConnection;
let carol: RawConnection;

before(async () => {
  server = await startServer({ name: "stream-language", users: PW });
  alice = await RawConnection.open(server, { label: "alice" });
  await alice.login(server, "alice", PW.alice, "desk", "de-AT");
  bob = await RawConnection.open(server, { label: "bob" });
  await bob.login(server, "bob", PW.bob, "desk");
  carol = await RawConnection.open(server, { label: "carol" });
  await carol.login(server, "carol", PW.carol, "desk", "");
});

after(async () => {
  alice?.destroy();
  bob?.destroy();
  carol?.destroy();
  await server?.stop();
});

test("a message without xml:lang arrives in the language of its sender's stream; an explicit one is kept", async () => {
  alice.write("<message to='bob@localhost/desk' type='chat' id='lang-1'><body>Servus</body></message>");
  const stamped = await bob.stanzaWithId("message", "lang-1", "alice's message");
  assert.equal(stamped.attrs["xml:lang"], "de-AT", stamped.toString());
  alice.write(
    "<message to='bob@localhost/desk' type='chat' id='lang-2' xml:lang='fr'><body>Salut</body></message>",
  );
  const own = await bob.stanzaWithId("message", "lang-2", "alice's French message");
  assert.equal(own.attrs["xml:lang"], "fr", own.toString());
});

test("a stream that declared no language is in the server's: its stanzas arrive with xml:lang en", async () => {
  carol.write("<message to='bob@localhost/desk' type='chat' id='lang-3'><body>Hi</body></message>");
  const stamped = await bob.stanzaWithId("message", "lang-3", "carol's message");
  assert.equal(stamped.attrs["xml:lang"], "en", stamped.toString());
});
