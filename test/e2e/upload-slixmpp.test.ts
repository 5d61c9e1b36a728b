/**
 * HTTP file upload (XEP-0363) with a real client: slixmpp's xep_0363 plugin at its defaults
 * finds the service in the server's disco#items, learns the size limit from its form, asks
 * for a slot and PUTs the file over HTTP (aiohttp); the file comes back byte for byte from
 * the GET URL. A file over the limit is refused by the plugin from the announced limit, and
 * the server refuses the slot itself with the limit when asked directly. (The driver makes
 * the plugin's disco requests itself: Debian's slixmpp 1.8.3 cannot on Python 3.11, see
 * the driver's `upload` command.)
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { commandSucceeds, requirePeer } from "../helpers/services.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { xml } from "../helpers/stanza.js";

const NS_UPLOAD = "urn:xmpp:http:upload:0";
const MAX = 64 * 1024;

const aiohttpSkip =
  slixSkip ||
  (await requirePeer("python3-aiohttp", () =>
    commandSucceeds("/usr/bin/python3", ["-c", "import aiohttp"]) === true
      ? true
      : "slixmpp's xep_0363 plugin needs it: install the Debian package python3-aiohttp",
  ));

describe("file upload with slixmpp", { skip: aiohttpSkip }, () => {
  let server: TestServer;
  let alice: SlixPeer;
  let httpPort: number;

  before(async () => {
    [httpPort] = (await freePorts(1)) as [number];
    server = await startServer({
      name: "upload-slixmpp",
      users: { alice: "alice-upload-pw" },
      extraArgs: ["--http-port", String(httpPort)],
      config: { upload: { maxFileBytes: MAX } },
      removeDataOnStop: true,
    });
    alice = await connectSlix(server, { user: "alice", password: "alice-upload-pw", resource: "desk" });
  });
  after(async () => {
    await alice?.close();
    await server?.stop();
  });

  test("a file uploaded by slixmpp comes back from its URL", async () => {
    const content = randomBytes(40_000);
    const file = path.join(server.dataDir, "holiday photo.jpg");
    writeFileSync(file, content);
    const url = (await alice.command("upload", { path: file }))!;
    assert.ok(url.startsWith(`http://127.0.0.1:${httpPort}/upload/`), url);
    assert.ok(url.endsWith("/holiday%20photo.jpg"), url);
    const got = await fetch(url);
    assert.equal(got.status, 200);
    // slixmpp guessed the type from the name, and the file is served as that.
    assert.equal(got.headers.get("content-type"), "image/jpeg");
    assert.equal(got.headers.get("x-content-type-options"), "nosniff");
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), content);
  });

  test("a file over the announced limit is refused", async () => {
    const file = path.join(server.dataDir, "big.bin");
    writeFileSync(file, randomBytes(MAX + 1));
    await assert.rejects(alice.command("upload", { path: file }), /FileTooBig/);
    // Asked directly, the service refuses the slot and names the limit.
    const reply = await alice.iq(
      xml(
        "iq",
        { type: "get", to: "upload.localhost", id: "big1" },
        xml("request", { xmlns: NS_UPLOAD, filename: "big.bin", size: String(MAX + 1) }),
      ),
    );
    assert.equal(reply.attrs.type, "error");
    assert.equal(
      reply.getChild("error")?.getChild("file-too-large", NS_UPLOAD)?.getChildText("max-file-size"),
      String(MAX),
    );
  });
});
