import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { parseJid } from "../../src/core/jid.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import { NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_HTTP_UPLOAD } from "../../src/core/xml/namespaces.js";
import disco from "../../src/modules/disco/index.js";
import { filenameProblem, shownFilename } from "../../src/modules/upload/filename.js";
import { contentDisposition } from "../../src/modules/upload/http.js";
import upload, { type UploadApi } from "../../src/modules/upload/index.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const SERVICE = "upload.example.test";

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(config?: Record<string, unknown>): Promise<Harness> {
  const h = await startHarness({
    modules: [disco, upload] as ModuleDefinition<unknown>[],
    http: true,
    ...(config ? { config } : {}),
  });
  harnesses.push(h);
  await h.createUser("alice");
  await h.createUser("bob");
  return h;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** An HTTP request with exactly the headers given (no length or type added). */
function request(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const askSlot = (attrs: Record<string, string>) =>
  x("iq", { type: "get", to: SERVICE }, x("request", { xmlns: NS_HTTP_UPLOAD, ...attrs }));

interface Slot {
  put: string;
  get: string;
  headers: Record<string, string>;
}

async function slotFor(s: FakeSession, filename: string, size: number, contentType?: string): Promise<Slot> {
  const reply = await s.iq(
    askSlot({ filename, size: String(size), ...(contentType ? { "content-type": contentType } : {}) }),
  );
  assert.equal(reply.attrs.type, "result", reply.toString());
  assert.equal(reply.attrs.from, SERVICE);
  const slot = reply.getChild("slot", NS_HTTP_UPLOAD)!;
  const put = slot.getChild("put")!;
  const headers: Record<string, string> = {};
  for (const h of put.getChildren("header")) headers[h.attrs.name!] = h.text();
  return { put: put.attrs.url!, get: slot.getChild("get")!.attrs.url!, headers };
}

const putFile = (slot: Slot, body: Buffer, contentType: string, extra: Record<string, string> = {}) =>
  request(
    "PUT",
    slot.put,
    { ...slot.headers, "content-type": contentType, "content-length": String(body.length), ...extra },
    body,
  );

function uploadError(reply: XmlElement): { condition?: string; type?: string; max?: string } {
  const error = reply.getChild("error");
  return {
    ...(errorCondition(reply) ? { condition: errorCondition(reply)! } : {}),
    ...(error?.attrs.type ? { type: error.attrs.type } : {}),
    ...(error?.getChild("file-too-large", NS_HTTP_UPLOAD)
      ? { max: error.getChild("file-too-large", NS_HTTP_UPLOAD)!.getChildText("max-file-size")! }
      : {}),
  };
}

test("the service is listed by the server and describes itself with its size limit", async () => {
  const h = await start({ upload: { maxFileBytes: 5000 } });
  const a = await h.connect("alice");
  const items = await a.iq(x("iq", { type: "get", to: h.domain }, x("query", { xmlns: NS_DISCO_ITEMS })));
  assert.ok(
    items
      .getChild("query")!
      .getChildren("item")
      .some((i) => i.attrs.jid === SERVICE),
    items.toString(),
  );
  const info = (
    await a.iq(x("iq", { type: "get", to: SERVICE }, x("query", { xmlns: NS_DISCO_INFO })))
  ).getChild("query", NS_DISCO_INFO)!;
  const identity = info.getChild("identity")!;
  assert.deepEqual([identity.attrs.category, identity.attrs.type], ["store", "file"]);
  assert.ok(info.getChildren("feature").some((f) => f.attrs.var === NS_HTTP_UPLOAD));
  const form = info.getChild("x", NS_DATA)!;
  const value = (v: string) =>
    form
      .getChildren("field")
      .find((f) => f.attrs.var === v)
      ?.getChildText("value");
  assert.equal(value("FORM_TYPE"), NS_HTTP_UPLOAD);
  assert.equal(value("max-file-size"), "5000");
  await a.disconnect();
});

test("a slot, a PUT and a GET give the file back as it was uploaded", async () => {
  const h = await start();
  const a = await h.connect("alice");
  const text = Buffer.from("hello, upload ✓\n");
  const slot = await slotFor(a, "notes é.txt", text.length, "text/plain");
  const base = h.server.http!.url!;
  assert.ok(slot.put.startsWith(`${base}/upload/`), slot.put);
  assert.equal(slot.get, slot.put);
  assert.match(slot.headers.Authorization ?? "", /^Bearer \S+$/);

  // Before the upload there is nothing to get.
  assert.equal((await request("GET", slot.get, {})).status, 404);
  assert.equal((await putFile(slot, text, "text/plain")).status, 201);
  const got = await request("GET", slot.get, {});
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, text);
  assert.equal(got.headers["content-type"], "text/plain");
  assert.equal(got.headers["x-content-type-options"], "nosniff");
  assert.match(String(got.headers["content-disposition"]), /^attachment;/);
  assert.ok(existsSync(path.join(h.dataDir, "uploads")));

  // A slot is used once.
  assert.equal((await putFile(slot, text, "text/plain")).status, 409);

  // Images are shown inline.
  const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
  const image = await slotFor(a, "pic.png", png.length, "image/png");
  assert.equal((await putFile(image, png, "image/png")).status, 201);
  const shown = await request("GET", image.get, {});
  assert.deepEqual(shown.body, png);
  assert.equal(shown.headers["content-type"], "image/png");
  assert.match(String(shown.headers["content-disposition"]), /^inline;/);
  await a.disconnect();
});

test("web clients on other origins: the PUT's preflight is answered and every answer allows any origin", async () => {
  const h = await start();
  const a = await h.connect("alice");
  const body = Buffer.from("from a page elsewhere");
  const slot = await slotFor(a, "page.txt", body.length, "text/plain");
  const preflight = await request("OPTIONS", slot.put, {
    origin: "https://chat.elsewhere.example",
    "access-control-request-method": "PUT",
    "access-control-request-headers": "authorization,content-type",
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers["access-control-allow-origin"], "*");
  assert.match(String(preflight.headers["access-control-allow-methods"]), /\bPUT\b/);
  assert.match(String(preflight.headers["access-control-allow-headers"]), /authorization/i);
  assert.match(String(preflight.headers["access-control-allow-headers"]), /content-type/i);
  const stored = await putFile(slot, body, "text/plain", { origin: "https://chat.elsewhere.example" });
  assert.equal(stored.status, 201);
  assert.equal(stored.headers["access-control-allow-origin"], "*");
  const again = await putFile(slot, body, "text/plain", { origin: "https://chat.elsewhere.example" });
  assert.equal(again.status, 409);
  assert.equal(again.headers["access-control-allow-origin"], "*", "a refusal is readable by the page too");
  const got = await request("GET", slot.get, { origin: "https://chat.elsewhere.example" });
  assert.equal(got.headers["access-control-allow-origin"], "*");
  await a.disconnect();
});

test("upload.directory: files are kept where configured (a relative path from the data directory)", async () => {
  const shared = mkdtempSync(path.join(os.tmpdir(), "sb-uploads-"));
  after(() => rmSync(shared, { recursive: true, force: true }));
  for (const [directory, where] of [
    [shared, (_h: Harness) => shared],
    ["files/up", (h: Harness) => path.join(h.dataDir, "files/up")],
  ] as const) {
    const h = await start({ upload: { directory } });
    const a = await h.connect("alice");
    const text = Buffer.from(`kept in ${directory}\n`);
    const slot = await slotFor(a, "kept.txt", text.length, "text/plain");
    assert.equal((await putFile(slot, text, "text/plain")).status, 201);
    const id = new URL(slot.put).pathname.split("/")[2]!;
    assert.deepEqual(
      readFileSync(path.join(where(h), id, "kept.txt")),
      text,
      `the file is under ${directory}`,
    );
    assert.ok(!existsSync(path.join(h.dataDir, "uploads", id)), "nothing under <dataDir>/uploads");
    assert.deepEqual((await request("GET", slot.get, {})).body, text);
    await a.disconnect();
  }
});

test("GET and HEAD serve byte ranges (audio and video in browsers, resumed downloads)", async () => {
  const h = await start();
  const a = await h.connect("alice");
  const body = Buffer.from("0123456789abcdef");
  const slot = await slotFor(a, "clip.bin", body.length, "application/octet-stream");
  assert.equal((await putFile(slot, body, "application/octet-stream")).status, 201);
  const whole = await request("GET", slot.get, {});
  assert.equal(whole.status, 200);
  assert.equal(whole.headers["accept-ranges"], "bytes");
  const cases: [string, number, string, string | undefined][] = [
    ["bytes=0-4", 206, "01234", "bytes 0-4/16"],
    ["bytes=10-", 206, "abcdef", "bytes 10-15/16"],
    ["bytes=-3", 206, "def", "bytes 13-15/16"],
    ["bytes=12-99", 206, "cdef", "bytes 12-15/16"],
    ["bytes=16-", 416, "", "bytes */16"],
    ["bytes=0-1,4-5", 200, body.toString(), undefined],
    ["lines=1-2", 200, body.toString(), undefined],
  ];
  for (const [range, status, text, contentRange] of cases) {
    const got = await request("GET", slot.get, { range });
    assert.equal(got.status, status, range);
    assert.equal(got.body.toString(), text, range);
    assert.equal(got.headers["content-range"], contentRange, range);
    if (status === 206) assert.equal(got.headers["content-length"], String(text.length), range);
  }
  const head = await request("HEAD", slot.get, { range: "bytes=2-5" });
  assert.equal(head.status, 206);
  assert.equal(head.headers["content-length"], "4");
  assert.equal(head.body.length, 0);
  await a.disconnect();
});

test("a deleted account's files and slots go with it; other accounts' stay", async () => {
  const h = await start();
  const a = await h.connect("alice");
  const b = await h.connect("bob");
  const body = Buffer.from("kept or not\n");
  const alices = await slotFor(a, "a.txt", body.length, "text/plain");
  const pending = await slotFor(a, "later.txt", 10, "text/plain");
  const bobs = await slotFor(b, "b.txt", body.length, "text/plain");
  assert.equal((await putFile(alices, body, "text/plain")).status, 201);
  assert.equal((await putFile(bobs, body, "text/plain")).status, 201);
  await a.disconnect();

  await h.server.services.hooks.fire("account/deleted", { username: "alice" });
  assert.equal((await request("GET", alices.get, {})).status, 404);
  assert.equal(
    (await putFile(pending, Buffer.alloc(10), "text/plain")).status,
    404,
    "the unused slot is gone",
  );
  const kept = await request("GET", bobs.get, {});
  assert.equal(kept.status, 200);
  assert.deepEqual(kept.body, body);
  await b.disconnect();
});

test("a PUT that does not match its slot is refused and stores nothing", async () => {
  const h = await start();
  const a = await h.connect("alice");
  const body = Buffer.from("0123456789");

  const wrongSize = await slotFor(a, "a.bin", 20, "application/octet-stream");
  assert.equal((await putFile(wrongSize, body, "application/octet-stream")).status, 400);
  const longer = await slotFor(a, "b.bin", 5, "application/octet-stream");
  assert.equal((await putFile(longer, body, "application/octet-stream")).status, 413);

  const slot = await slotFor(a, "c.bin", body.length, "application/octet-stream");
  const noToken = { ...slot, headers: {} };
  assert.equal((await putFile(noToken, body, "application/octet-stream")).status, 403);
  const wrongToken = { ...slot, headers: { Authorization: "Bearer not-the-secret" } };
  assert.equal((await putFile(wrongToken, body, "application/octet-stream")).status, 403);
  // Another slot's secret does not open this one.
  assert.equal(
    (await putFile({ ...slot, headers: longer.headers }, body, "application/octet-stream")).status,
    403,
  );
  assert.equal((await putFile(slot, body, "text/html")).status, 400);
  // Still usable after the refusals.
  assert.equal((await putFile(slot, body, "application/octet-stream")).status, 201);
  for (const s of [wrongSize, longer]) assert.equal((await request("GET", s.get, {})).status, 404);

  // A slot not used in time is void.
  const late = await slotFor(a, "d.bin", body.length);
  h.clock.advance(301_000);
  assert.equal((await putFile(late, body, "application/octet-stream")).status, 403);
  assert.equal((await request("GET", late.get, {})).status, 404);
  await a.disconnect();
});

test("requests outside the limits get the XEP-0363 errors", async () => {
  const h = await start({ upload: { maxFileBytes: 1000, quotaBytesPerUser: 1500 } });
  const a = await h.connect("alice");

  const tooLarge = await a.iq(askSlot({ filename: "big.bin", size: "1001" }));
  assert.deepEqual(uploadError(tooLarge), { condition: "not-acceptable", type: "modify", max: "1000" });
  const badNames = [
    ...["", "../etc/passwd", "a/b.txt", "..", ".hidden", "a\\b", "x".repeat(256)],
    // Names that do not show as what they are: "photo\u202Egpj.exe" reads "photoexe.jpg".
    ...["photo\u202Egpj.exe", "a\u202Ab", "a\u2066b\u2069", "a\u200Fb", "a\u061Cb"],
    ...["a\tb", "a\u007Fb", "a\u0085b", "a\u009Bb", "a\u2028b", "a\u2029b"],
    // Names that read as paths: slashes and backslashes of other forms.
    ...[
      "bank\u2215statement.pdf",
      "1\u20442.txt",
      "a\uFF0Fb",
      "a\u29F8b",
      "a\uFF3Cb",
      "a\u2216b",
      "a\u29F9b",
    ],
  ];
  for (const filename of badNames) {
    const bad = await a.iq(askSlot({ filename, size: "10" }));
    assert.deepEqual(
      uploadError(bad),
      { condition: "not-acceptable", type: "modify" },
      JSON.stringify(filename),
    );
    const text = bad.getChild("error")!.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas") ?? "";
    assert.match(text, /^the file name /, JSON.stringify(filename));
  }
  // Other scripts, right-to-left ones included, and emoji joined by ZWJ are names like any other
  // (empty files, so the quota below is not touched).
  for (const filename of ["très cool.jpg", "\u05E9\u05DC\u05D5\u05DD.txt", "\u{1F469}\u200D\u{1F4BB}.png"])
    await slotFor(a, filename, 0);
  assert.equal(errorCondition(await a.iq(askSlot({ filename: "a.txt", size: "-1" }))), "bad-request");
  assert.equal(errorCondition(await a.iq(askSlot({ filename: "a.txt" }))), "bad-request");
  assert.equal(
    errorCondition(await a.iq(askSlot({ filename: "a.txt", size: "1", "content-type": "not a type" }))),
    "bad-request",
  );

  // The quota counts pending slots and stored files; another account has its own.
  await slotFor(a, "one.bin", 1000);
  const over = await a.iq(askSlot({ filename: "two.bin", size: "600" }));
  assert.deepEqual(uploadError(over), { condition: "resource-constraint", type: "wait" });
  await slotFor(a, "two.bin", 500);
  const b = await h.connect("bob");
  await slotFor(b, "two.bin", 1000);
  // Unused slots stop counting when they expire.
  h.clock.advance(301_000);
  await slotFor(a, "three.bin", 1000);
  await a.disconnect();
  await b.disconnect();
});

test("an IQ without exactly one payload is a bad request (RFC 6120 §8.2.3), not answered from its first child", async () => {
  const h = await start();
  const a = await h.connect("alice");
  const two = askSlot({ filename: "a.txt", size: "10" });
  two.children.push(x("request", { xmlns: NS_HTTP_UPLOAD, filename: "b.txt", size: "10" }));
  assert.equal(errorCondition(await a.iq(two)), "bad-request");
  assert.equal(errorCondition(await a.iq(x("iq", { type: "get", to: SERVICE }))), "bad-request");
  await a.disconnect();
});

test("only accounts of the server may ask for slots", async () => {
  const h = await start();
  const router = h.server.services.router;
  const sent: XmlElement[] = [];
  router.addRemoteRoute({
    kind: "test",
    priority: 1,
    canRoute: (d) => d === "remote.test",
    send: (s) => sent.push(s),
  });
  const iq = askSlot({ filename: "a.txt", size: "10" });
  iq.attrs.id = "r1";
  iq.attrs.from = "mallory@remote.test/x";
  await router.deliver(iq, parseJid("mallory@remote.test/x"), parseJid(SERVICE));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.attrs.type, "error");
  assert.equal(errorCondition(sent[0]!), "forbidden");
});

test("files are removed after the expiry, and the service can be turned off", async () => {
  const h = await start({ upload: { expiryDays: 2 } });
  const a = await h.connect("alice");
  const body = Buffer.from("short-lived");
  const slot = await slotFor(a, "x.txt", body.length, "text/plain");
  assert.equal((await putFile(slot, body, "text/plain")).status, 201);
  const api = h.server.services.apis.get("upload") as UploadApi;
  h.clock.advance(86_400_000);
  assert.equal(await api.removeExpired(), 0);
  assert.equal((await request("GET", slot.get, {})).status, 200);
  h.clock.advance(86_400_000);
  assert.equal(await api.removeExpired(), 1);
  assert.equal((await request("GET", slot.get, {})).status, 404);
  await a.disconnect();

  const off = await start({ upload: { enabled: false } });
  const c = await off.connect("alice");
  assert.equal(
    errorCondition(await c.iq(askSlot({ filename: "a.txt", size: "1" }))),
    "remote-server-not-found",
  );
  await c.disconnect();
});

test("a file stored under a name now refused is offered to browsers without its hidden or slash-like characters", () => {
  const name = "photo\u202Egpj.exe";
  assert.notEqual(filenameProblem(name), undefined);
  assert.equal(shownFilename(name), "photo_gpj.exe");
  assert.equal(
    contentDisposition("application/octet-stream", name),
    `attachment; filename="photo_gpj.exe"; filename*=UTF-8''photo_gpj.exe`,
  );
  assert.equal(
    contentDisposition("image/png", "très\u0085.png"),
    `inline; filename="tr_s_.png"; filename*=UTF-8''tr%C3%A8s_.png`,
  );
  // Slashes and backslashes of other forms: not ASCII, so the plain filename had "_" already;
  // the UTF-8 one must not carry them either.
  const slashes = "a\u2215b\u2044c\uFF0Fd\u29F8e\uFF3Cf\u2216g\u29F9h.txt";
  assert.notEqual(filenameProblem(slashes), undefined);
  assert.equal(shownFilename(slashes), "a_b_c_d_e_f_g_h.txt");
  assert.equal(
    contentDisposition("text/plain", slashes),
    `attachment; filename="a_b_c_d_e_f_g_h.txt"; filename*=UTF-8''a_b_c_d_e_f_g_h.txt`,
  );
});
