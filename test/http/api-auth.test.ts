/**
 * Admin authentication of the API: tokens (missing, malformed, unknown, revoked) and
 * console logins of accounts holding the admin role (wrong password, non-admin,
 * disabled, role revoked, rate limiting), the actor recorded for each, and the CSRF
 * token that cookie-authenticated changes need.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { AdminStore } from "../../src/http/admin-store.js";
import { CLI } from "../helpers/server.js";
import { CookieJar, problemOf, startWebServer, type WebServer } from "./api-kit.js";

const run = promisify(execFile);

describe("admin API authentication", () => {
  let web: WebServer;

  before(async () => {
    // Few failures allowed, so the rate limit is reached quickly.
    web = await startWebServer({
      config: { limits: { authFailuresPerAddress: 50, authFailuresPerAccount: 3 } },
    });
    await web.addUser("root", "root-password");
    await web.addUser("mallory", "mallory-password");
    await web.addUser("eve", "eve-password");
    const store = new AdminStore(web.server.services.storage, web.server.services.clock);
    await store.grantAdmin("root", "test");
    await store.grantAdmin("eve", "test");
  });
  after(async () => {
    await web?.stop();
  });

  test("without credentials: 401 problem with a Bearer challenge, on reads and changes", async () => {
    const read = await web.call("GET", "/api/v1/user/list");
    const p = problemOf(read, 401);
    assert.equal(p.type, "/problems/authentication-required");
    assert.match(read.headers.get("www-authenticate") ?? "", /^Bearer realm=/);
    // A change without credentials is refused as unauthenticated (before any CSRF check).
    problemOf(await web.call("POST", "/api/v1/user/add", { body: { name: "x", password: "y" } }), 401);
    assert.equal(await web.server.services.storage.accounts.exists("x"), false);
  });

  test("an unknown or malformed token: 401; a revoked token: 403", async () => {
    const unknown = await web.call("GET", "/api/v1/user/list", { token: `sbt_${"A".repeat(43)}` });
    assert.equal(problemOf(unknown, 401).type, "/problems/invalid-credentials");
    problemOf(await web.call("GET", "/api/v1/user/list", { token: "not-a-token" }), 401);
    problemOf(
      await web.call("GET", "/api/v1/user/list", { headers: { authorization: "Basic cm9vdDpw" } }),
      401,
    );

    const created = await web.call("POST", "/api/v1/token/create", {
      token: web.token,
      body: { name: "short-lived" },
    });
    const secret = created.json.data.token as string;
    assert.equal((await web.call("GET", "/api/v1/user/list", { token: secret })).status, 200);
    await web.call("POST", "/api/v1/token/revoke", { token: web.token, body: { name: "short-lived" } });
    const revoked = await web.call("GET", "/api/v1/user/list", { token: secret });
    assert.equal(problemOf(revoked, 403).type, "/problems/token-revoked");
    // Changes with it are refused too.
    problemOf(
      await web.call("POST", "/api/v1/user/add", { token: secret, body: { name: "z", password: "z" } }),
      403,
    );
  });

  test("a token revoked by the CLI in another process is refused at once", async () => {
    const created = await web.call("POST", "/api/v1/token/create", {
      token: web.token,
      body: { name: "cli-revoked" },
    });
    const secret = created.json.data.token as string;
    assert.equal((await web.call("GET", "/api/v1/admin/list", { token: secret })).status, 200);
    await run(process.execPath, [CLI, "token", "revoke", "cli-revoked", "--data-dir", web.dataDir]);
    problemOf(await web.call("GET", "/api/v1/admin/list", { token: secret }), 403);
  });

  test("the token name is the actor of audit records", async () => {
    await web.call("POST", "/api/v1/publisher/add", {
      token: web.token,
      body: { organisation: "Audited", email: "a@example.com" },
    });
    const audit = await web.call("GET", "/api/v1/audit/list", {
      token: web.token,
      query: { kind: "publisher.add" },
    });
    assert.equal(audit.json.data.entries.at(-1).data.actor, "api:test-admin");
  });

  test("console login: an admin's XMPP password opens a session; actor console:<account>", async () => {
    const jar = new CookieJar();
    const login = await web.call("POST", "/api/v1/session/login", {
      jar,
      body: { username: "root", password: "root-password" },
    });
    assert.equal(login.status, 200, login.text);
    assert.deepEqual(login.json.user, { kind: "console", id: "root" });
    const csrf = login.json.csrfToken as string;
    assert.ok(jar.cookies.has("sb_session"));

    assert.equal((await web.call("GET", "/api/v1/user/list", { jar })).status, 200);
    // A change needs the CSRF token of the session.
    const noCsrf = await web.call("POST", "/api/v1/publisher/add", {
      jar,
      body: { organisation: "Console Co", email: "c@example.com" },
    });
    assert.equal(problemOf(noCsrf, 403).type, "/problems/csrf-failed");
    const wrongCsrf = await web.call("POST", "/api/v1/publisher/add", {
      jar,
      headers: { "x-csrf-token": "x".repeat(43) },
      body: { organisation: "Console Co", email: "c@example.com" },
    });
    problemOf(wrongCsrf, 403);
    const done = await web.call("POST", "/api/v1/publisher/add", {
      jar,
      headers: { "x-csrf-token": csrf },
      body: { organisation: "Console Co", email: "c@example.com" },
    });
    assert.equal(done.status, 200, done.text);
    const audit = await web.call("GET", "/api/v1/audit/list", { jar, query: { kind: "publisher.add" } });
    assert.equal(audit.json.data.entries.at(-1).data.actor, "console:root");

    // Logging out ends the session.
    const out = await web.call("POST", "/api/v1/session/logout", { jar, headers: { "x-csrf-token": csrf } });
    assert.equal(out.status, 204);
    problemOf(await web.call("GET", "/api/v1/user/list", { jar }), 401);
  });

  test("console login refused alike for a wrong password, an unknown account and a non-admin", async () => {
    for (const [username, password] of [
      ["root", "wrong-password"],
      ["nobody", "whatever"],
      ["mallory", "mallory-password"],
    ] as const) {
      const a = await web.call("POST", "/api/v1/session/login", { body: { username, password } });
      const p = problemOf(a, 401);
      assert.equal(p.type, "/problems/invalid-credentials");
      assert.equal(p.detail, "invalid user name or password, or the account is not an administrator");
    }
    const invalid = await web.call("POST", "/api/v1/session/login", { body: { username: "root" } });
    assert.deepEqual(problemOf(invalid, 400).errors, [
      { path: "password", message: "expected a non-empty string" },
    ]);
    // A form post is not accepted (JSON only: no cross-site login).
    problemOf(
      await web.call("POST", "/api/v1/session/login", {
        form: { username: "root", password: "root-password" },
      }),
      415,
    );
  });

  test("failed console logins are rate-limited per account (429 with Retry-After), before the password is checked", async () => {
    await web.addUser("target", "target-password");
    await new AdminStore(web.server.services.storage, web.server.services.clock).grantAdmin("target", "test");
    for (let i = 0; i < 3; i++) {
      const a = await web.call("POST", "/api/v1/session/login", {
        body: { username: "target", password: `guess-${i}` },
      });
      problemOf(a, 401);
    }
    // Even the right password is refused now.
    const limited = await web.call("POST", "/api/v1/session/login", {
      body: { username: "target", password: "target-password" },
    });
    const p = problemOf(limited, 429);
    assert.equal(p.type, "/problems/too-many-requests");
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
    assert.ok(p.retryAfter > 0);
    const metrics = await web.call("GET", "/metrics");
    assert.match(metrics.text, /switchboard_web_login_failures_total\{face="console"\} [1-9]/);
  });

  test("a console session stops working when the role is revoked or the account disabled", async () => {
    const jar = new CookieJar();
    const login = await web.call("POST", "/api/v1/session/login", {
      jar,
      body: { username: "eve", password: "eve-password" },
    });
    assert.equal(login.status, 200, login.text);
    assert.equal((await web.call("GET", "/api/v1/user/list", { jar })).status, 200);
    // The role is taken away in another process (the CLI).
    await new AdminStore(web.server.services.storage, web.server.services.clock).revokeAdmin("eve", "test");
    problemOf(await web.call("GET", "/api/v1/user/list", { jar }), 403);

    const jar2 = new CookieJar();
    const root = await web.call("POST", "/api/v1/session/login", {
      jar: jar2,
      body: { username: "root", password: "root-password" },
    });
    assert.equal(root.status, 200);
    await web.server.services.storage.accounts.setDisabled("root", true);
    problemOf(await web.call("GET", "/api/v1/user/list", { jar: jar2 }), 403);
    await web.server.services.storage.accounts.setDisabled("root", false);
    assert.equal((await web.call("GET", "/api/v1/user/list", { jar: jar2 })).status, 200);
  });

  test("admin revoke through the API ends the account's console sessions", async () => {
    await web.addUser("temp-admin", "temp-password");
    await web.call("POST", "/api/v1/admin/grant", { token: web.token, body: { name: "temp-admin" } });
    const jar = new CookieJar();
    const login = await web.call("POST", "/api/v1/session/login", {
      jar,
      body: { username: "temp-admin", password: "temp-password" },
    });
    assert.equal(login.status, 200);
    const revoked = await web.call("POST", "/api/v1/admin/revoke", {
      token: web.token,
      body: { name: "temp-admin" },
    });
    assert.equal(revoked.json.data.endedSessions, 1);
    const session = await web.call("GET", "/api/v1/session", { jar });
    assert.equal(session.json.user, null, "the session is gone");
  });

  test("login requests are limited per address (30 a minute), whatever the accounts tried", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++) {
      const a = await web.call("POST", "/api/v1/session/login", {
        body: { username: `probe${i}`, password: "x" },
      });
      statuses.push(a.status);
    }
    assert.ok(statuses.includes(429), statuses.join(","));
    const limited = await web.call("POST", "/api/v1/session/login", {
      body: { username: "root", password: "x" },
    });
    assert.equal(problemOf(limited, 429).type, "/problems/too-many-requests");
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
  });
});
