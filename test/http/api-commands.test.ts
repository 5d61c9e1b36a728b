/**
 * The admin API runs every admin command: one successful call per command route (with a
 * check of what it did), through a real server over HTTP with an API token; the actor is
 * recorded as api:<token name>; commands that act on live sessions reach the running
 * server. Every command route of the known groups must have been exercised.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { generateKeyPair } from "../../src/licensing/index.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { type Answer, startWebServer, type WebServer } from "./api-kit.js";

/** Command groups whose every command this file must call successfully. */
const KNOWN_GROUPS = ["user", "publisher", "app", "licence", "policy", "audit", "stats", "token", "admin"];

describe("admin API: one success per command", () => {
  let web: WebServer;
  const succeeded = new Set<string>();

  /** Calls a command route and requires a 200 with a message; records the success. */
  async function ok(
    method: "GET" | "POST",
    words: string,
    input: Record<string, unknown> = {},
  ): Promise<Answer> {
    const url = `/api/v1/${words.replaceAll(" ", "/")}`;
    const a =
      method === "GET"
        ? await web.call("GET", url, { token: web.token, query: input as Record<string, string> })
        : await web.call("POST", url, { token: web.token, body: input });
    assert.equal(a.status, 200, `${method} ${url}: ${a.text}`);
    assert.match(a.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(typeof a.json.message, "string");
    succeeded.add(`${method} ${url}`);
    return a;
  }

  before(async () => {
    web = await startWebServer();
  });
  after(async () => {
    await web?.stop();
  });

  test("accounts: add, show, list, passwd, import, sessions, kick, disable, enable, delete", async () => {
    const added = await ok("POST", "user add", { name: "alice", password: "alice-pw-1" });
    assert.equal(added.json.data.jid, "alice@localhost");
    await ok("POST", "user passwd", { name: "alice", password: "alice-pw-2" });
    const shown = await ok("GET", "user show", { name: "alice" });
    assert.deepEqual([shown.json.data.jid, shown.json.data.disabled], ["alice@localhost", false]);

    const file = path.join(web.dataDir, "import.csv");
    writeFileSync(file, "carol,carol-pw\ndave,dave-pw\n");
    const imported = await ok("POST", "user import", { file });
    assert.equal(imported.json.data.created, 2);

    const list = await ok("GET", "user list", { prefix: "", limit: "10" });
    assert.deepEqual(list.json.data.accounts, ["alice", "carol", "dave"]);

    // Live sessions: alice logs in with a real client.
    let alice: JsPeer | undefined = await connectJs(web.asTestServer(), {
      user: "alice",
      password: "alice-pw-2",
      resource: "laptop",
    });
    try {
      const sessions = await ok("GET", "user sessions", { name: "alice" });
      assert.equal(sessions.json.data.sessions.length, 1);
      assert.equal(sessions.json.data.sessions[0].resource, "laptop");
      assert.equal(sessions.json.data.sessions[0].secure, true);

      const kicked = await ok("POST", "user kick", {
        name: "alice",
        resource: "laptop",
        reason: "maintenance",
      });
      assert.equal(kicked.json.data.closed, 1);
      await alice.ended;
      assert.deepEqual(alice.streamErrors.all(), ["policy-violation"]);
      alice = undefined;
    } finally {
      await alice?.close();
    }

    const bob = await connectJs(web.asTestServer(), {
      user: "carol",
      password: "carol-pw",
      resource: "phone",
    });
    try {
      const disabled = await ok("POST", "user disable", { name: "carol" });
      assert.equal(disabled.json.data.closedSessions, 1, "disabling closes the live session");
      await bob.ended;
    } finally {
      await bob.close();
    }
    assert.equal((await web.server.services.storage.accounts.get("carol"))?.disabled, true);
    await ok("POST", "user enable", { name: "carol" });
    assert.equal((await web.server.services.storage.accounts.get("carol"))?.disabled, false);

    const deleted = await ok("POST", "user delete", { name: "dave" });
    assert.equal(deleted.json.data.disconnectedSessions, 0);
    assert.equal(await web.server.services.storage.accounts.exists("dave"), false);
  });

  test("licensing: publishers, apps, keys, licences, policy, audit, statistics", async () => {
    const pub = await ok("POST", "publisher add", { organisation: "Example Ltd", email: "dev@example.com" });
    const publisherId = pub.json.data.publisher.id as string;
    const publishers = await ok("GET", "publisher list");
    assert.deepEqual(
      publishers.json.data.publishers.map((p: { id: string }) => p.id),
      [publisherId],
    );

    const k1 = generateKeyPair();
    const registered = await ok("POST", "app register", {
      clientId: "com.example.chat",
      name: "Example Chat",
      publisher: publisherId,
      platform: ["linux", "android"],
      keyId: "k1",
      publicKey: k1.publicKey,
    });
    assert.equal(registered.json.data.app.clientId, "com.example.chat");
    const apps = await ok("GET", "app list", { publisher: publisherId });
    assert.equal(apps.json.data.apps.length, 1);

    const k2 = generateKeyPair();
    const added = await ok("POST", "app key add", {
      clientId: "com.example.chat",
      keyId: "k2",
      publicKey: k2.publicKey,
    });
    assert.equal(added.json.data.key.keyId, "k2");
    const revoked = await ok("POST", "app key revoke", { clientId: "com.example.chat", keyId: "k1" });
    assert.ok(revoked.json.data.key.revokedAt, "the key has a revocation time");

    const granted = await ok("POST", "licence grant", {
      clientId: "com.example.chat",
      scope: "client",
      maxSessions: 5,
      terms: "standard-2026",
    });
    const licenceId = granted.json.data.licence.id as string;
    assert.equal(granted.json.data.licence.maxSessions, 5);

    assert.equal((await ok("POST", "licence suspend", { licenceId })).json.data.licence.status, "suspended");
    assert.equal((await ok("POST", "licence reinstate", { licenceId })).json.data.licence.status, "active");
    const extended = await ok("POST", "licence extend", { licenceId, until: "2030-01-01T00:00:00Z" });
    assert.equal(new Date(extended.json.data.licence.validUntil).toISOString(), "2030-01-01T00:00:00.000Z");
    const listed = await ok("GET", "licence list", { app: "com.example.chat", status: "active" });
    assert.deepEqual(
      listed.json.data.licences.map((l: { id: string }) => l.id),
      [licenceId],
    );
    assert.equal((await ok("POST", "licence revoke", { licenceId })).json.data.licence.status, "revoked");
    const rotated = await ok("POST", "licence tickets rotate");
    assert.equal(typeof rotated.json.data.rotatedAt, "number");

    const shown = await ok("GET", "app show", { clientId: "com.example.chat" });
    assert.equal(shown.json.data.keys.length, 2);
    assert.equal(shown.json.data.licences.length, 1);

    // Repeatable options as JSON arrays, a flag as a boolean.
    const policy = await ok("POST", "policy set", {
      mode: "warn",
      stage: ["2027-01-15T00:00:00Z=enforce@25"],
      exempt: ["alice"],
      app: "com.example.chat",
      minVersion: "2.0",
      clearStages: false,
    });
    assert.equal(policy.json.data.policy.mode, "warn");
    const show = await ok("GET", "policy show");
    assert.deepEqual(show.json.data.policy.exemptions, ["alice"]);
    assert.equal(show.json.data.policy.apps["com.example.chat"].minVersion, "2.0");
    assert.deepEqual(policy.json.data.warnings, [], "a schedule that only tightens");
    // A stage that relaxes enforcement is accepted, with a warning in the answer.
    const relaxing = await ok("POST", "policy set", { stage: ["2027-02-01T00:00:00Z=open@10"] });
    assert.deepEqual(relaxing.json.data.warnings, [
      "the stage of 2027-02-01T00:00:00Z (open for 10 % of accounts) relaxes enforcement: accounts in enforce before it go back to open",
    ]);
    await ok("POST", "policy set", { stage: ["2027-02-01T00:00:00Z=enforce@10"] });

    // Every change above was made by the API token.
    const audit = await ok("GET", "audit list", { limit: "100" });
    const licensing = (audit.json.data.entries as { kind: string; data: { actor: string } }[]).filter(
      (e) => !e.kind.startsWith("token.") && !e.kind.startsWith("admin."),
    );
    assert.deepEqual([...new Set(licensing.map((e) => e.data.actor))], ["api:test-admin"]);
    assert.ok(licensing.length >= 8, `${licensing.length} licensing audit entries`);

    const stats = await ok("GET", "stats clients");
    assert.ok(stats.json.data, "statistics data");
  });

  test("tokens and admin roles", async () => {
    const created = await ok("POST", "token create", { name: "deploy-bot" });
    const secret = created.json.data.token as string;
    assert.match(secret, /^sbt_[A-Za-z0-9_-]{43}$/);
    // The new token works.
    const probe = await web.call("GET", "/api/v1/token/list", { token: secret });
    assert.equal(probe.status, 200);

    const tokens = await ok("GET", "token list");
    const names = tokens.json.data.tokens.map((t: { name: string }) => t.name).sort();
    assert.deepEqual(names, ["deploy-bot", "test-admin"]);
    assert.ok(!tokens.text.includes(secret), "token list never shows a secret");

    await ok("POST", "token revoke", { name: "deploy-bot" });
    assert.equal((await web.call("GET", "/api/v1/token/list", { token: secret })).status, 403);

    await ok("POST", "admin grant", { name: "alice" });
    const admins = await ok("GET", "admin list");
    assert.deepEqual(
      admins.json.data.admins.map((a: { name: string }) => a.name),
      ["alice"],
    );
    await ok("POST", "admin revoke", { name: "alice" });
    assert.deepEqual((await ok("GET", "admin list")).json.data.admins, []);
  });

  test("every command route of the known groups answered a success", async () => {
    const doc = (await web.call("GET", "/api/v1/openapi.json")).json;
    const expected: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      const group = p.split("/")[3]!;
      if (!KNOWN_GROUPS.includes(group)) continue;
      for (const method of Object.keys(ops)) expected.push(`${method.toUpperCase()} ${p}`);
    }
    const missing = expected.filter((e) => !succeeded.has(e));
    assert.deepEqual(missing, [], "command routes without a successful call in this file");
    assert.ok(expected.length >= 30, `${expected.length} routes`);
  });

  test("no read-only command answers 500 for an empty query (commands of every group)", async () => {
    const doc = (await web.call("GET", "/api/v1/openapi.json")).json;
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      if (!("get" in ops) || !p.startsWith("/api/v1/") || p === "/api/v1/openapi.json") continue;
      const a = await web.call("GET", p, { token: web.token });
      assert.ok(a.status === 200 || (a.status >= 400 && a.status < 500), `${p}: ${a.status} ${a.text}`);
    }
  });
});
