/**
 * Cookie sessions and CSRF protection, through a page plugin registered the way the
 * portal and console register theirs: cookie attributes, the CSRF token in a header or a
 * form field (missing or wrong → 403 problem), a new id at login, data kept with the
 * session, idle and absolute expiry, logout, the opt-out for routes that authenticate
 * otherwise, and Secure cookies over HTTPS.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { HttpPlugin } from "../../src/http/context.js";
import { SESSION_STORE } from "../../src/http/sessions.js";
import { ManualClock } from "../kit/harness.js";
import { CookieJar, problemOf, startWebServer, type WebServer } from "./api-kit.js";

/** Pages as a portal would write them. */
const pages: HttpPlugin = {
  name: "test-pages",
  prefix: "/t",
  register(app, ctx) {
    app.get("/form", async (request, reply) => {
      const s = await ctx.sessions.ensure(request, reply);
      return { csrf: s.csrfToken, count: s.get<number>("count") ?? 0, user: s.user ?? null };
    });
    app.post("/count", async (request) => {
      const s = request.session!;
      const count = (s.get<number>("count") ?? 0) + 1;
      s.set("count", count);
      return { count };
    });
    app.post<{ Body: { user: string } }>("/login", async (request, reply) => {
      const s = await ctx.sessions.start(request, reply, { kind: "portal", id: request.body.user });
      return { csrf: s.csrfToken };
    });
    app.post("/logout", async (request, reply) => {
      await ctx.sessions.end(request, reply);
      return { ok: true };
    });
    app.post("/webhook", { config: { csrf: false } }, async () => ({ ok: true }));
    app.get("/admin-only", { preValidation: ctx.auth.requireAdmin }, async (request) => ({
      actor: request.admin!.actor,
    }));
  },
};

function sessionCookie(jar: CookieJar): string {
  const line = jar.setCookies.filter((l) => l.startsWith("sb_session=")).at(-1);
  assert.ok(line, "a session cookie was set");
  return line;
}

describe("browser sessions and CSRF", () => {
  let web: WebServer;
  const clock = new ManualClock(Date.UTC(2026, 5, 1));

  before(async () => {
    web = await startWebServer({
      plugins: [pages],
      clock,
      config: { http: { sessionIdleMinutes: 30, sessionMaxHours: 2 } },
    });
  });
  after(async () => {
    await web?.stop();
  });

  test("a form page starts an anonymous session: HttpOnly, SameSite=Lax, Path=/, not Secure over HTTP", async () => {
    const jar = new CookieJar();
    const a = await web.call("GET", "/t/form", { jar });
    assert.equal(a.status, 200);
    assert.match(a.json.csrf, /^[A-Za-z0-9_-]{43}$/);
    const cookie = sessionCookie(jar);
    assert.match(cookie, /; HttpOnly/i);
    assert.match(cookie, /; SameSite=Lax/i);
    assert.match(cookie, /; Path=\//i);
    assert.doesNotMatch(cookie, /; Secure/i);
    assert.doesNotMatch(cookie, /Max-Age|Expires/i, "a browser-session cookie");
    // The same session on the next request: no new cookie, same token.
    const b = await web.call("GET", "/t/form", { jar });
    assert.equal(b.json.csrf, a.json.csrf);
    assert.equal(b.headers.getSetCookie().length, 0);
  });

  test("state-changing requests need the session's CSRF token (header or form field)", async () => {
    const jar = new CookieJar();
    const { csrf } = (await web.call("GET", "/t/form", { jar })).json;

    const missing = await web.call("POST", "/t/count", { jar, form: { a: "1" } });
    const p = problemOf(missing, 403);
    assert.equal(p.type, "/problems/csrf-failed");
    assert.match(p.detail, /missing CSRF token/);
    // One character changed — the first: the last of 43 base64url characters carries only 4 bits.
    const forged = `${csrf[0] === "A" ? "B" : "A"}${csrf.slice(1)}`;
    const wrong = await web.call("POST", "/t/count", { jar, form: { _csrf: forged } });
    assert.match(problemOf(wrong, 403).detail, /does not match/);
    const otherLength = await web.call("POST", "/t/count", { jar, headers: { "x-csrf-token": "short" } });
    problemOf(otherLength, 403);

    const viaForm = await web.call("POST", "/t/count", { jar, form: { _csrf: csrf } });
    assert.equal(viaForm.status, 200, viaForm.text);
    const viaHeader = await web.call("POST", "/t/count", {
      jar,
      headers: { "x-csrf-token": csrf },
      body: {},
    });
    assert.equal(viaHeader.json.count, 2, "data kept with the session across requests");
    assert.equal((await web.call("GET", "/t/form", { jar })).json.count, 2);

    // Another session's token is no good.
    const other = new CookieJar();
    const theirs = (await web.call("GET", "/t/form", { jar: other })).json.csrf;
    problemOf(await web.call("POST", "/t/count", { jar, headers: { "x-csrf-token": theirs } }), 403);
  });

  test("without a session a change is refused (login forms need a session first)", async () => {
    const a = await web.call("POST", "/t/login", { form: { user: "x" } });
    assert.match(problemOf(a, 403).detail, /no session/);
    // DELETE and PUT are checked like POST.
    problemOf(await web.call("DELETE", "/t/count"), 405);
  });

  test("only a valid API token stands in for the CSRF token", async () => {
    const jar = new CookieJar();
    await web.call("GET", "/t/form", { jar });
    // The session cookie rides along; a made-up, malformed or revoked token must not lift the check.
    const madeUp = `sbt_${"A".repeat(43)}`;
    for (const token of [madeUp, "not-a-token", ""]) {
      const a = await web.call("POST", "/t/count", { jar, token, body: {} });
      assert.match(problemOf(a, 403).detail, /missing CSRF token/, `Bearer "${token}"`);
    }
    const created = await web.server.http!.context.adminStore.createToken("short-lived", "cli:test");
    const valid = await web.call("POST", "/t/count", { jar, token: created.secret, body: {} });
    assert.equal(valid.status, 200, valid.text);
    await web.server.http!.context.adminStore.revokeToken("short-lived", "cli:test");
    const revoked = await web.call("POST", "/t/count", { jar, token: created.secret, body: {} });
    assert.match(problemOf(revoked, 403).detail, /missing CSRF token/);
  });

  test("routes with csrf: false are not checked", async () => {
    const a = await web.call("POST", "/t/webhook", { body: { event: "x" } });
    assert.equal(a.status, 200);
  });

  test("login gives a new session id and CSRF token; the old ones stop working", async () => {
    const jar = new CookieJar();
    const before = (await web.call("GET", "/t/form", { jar })).json.csrf;
    const oldCookie = jar.cookies.get("sb_session")!;
    const login = await web.call("POST", "/t/login", {
      jar,
      form: { _csrf: before, user: "pub@example.com" },
    });
    assert.equal(login.status, 200, login.text);
    const newCookie = jar.cookies.get("sb_session")!;
    assert.notEqual(newCookie, oldCookie);
    assert.notEqual(login.json.csrf, before);
    const me = await web.call("GET", "/t/form", { jar });
    assert.deepEqual(me.json.user, { kind: "portal", id: "pub@example.com" });

    const stale = new CookieJar();
    stale.cookies.set("sb_session", oldCookie);
    const replay = await web.call("POST", "/t/count", { jar: stale, headers: { "x-csrf-token": before } });
    assert.match(problemOf(replay, 403).detail, /no session/);
  });

  test("the store keeps a hash of the session id, never the id", async () => {
    const jar = new CookieJar();
    await web.call("GET", "/t/form", { jar });
    const id = jar.cookies.get("sb_session")!;
    const rows = await web.server.services.storage.documents(SESSION_STORE).list();
    assert.ok(rows.length > 0);
    for (const r of rows) {
      assert.match(r.key, /^[0-9a-f]{64}$/);
      assert.ok(!JSON.stringify(r).includes(id));
    }
  });

  test("logout deletes the session and clears the cookie", async () => {
    const jar = new CookieJar();
    const { csrf } = (await web.call("GET", "/t/form", { jar })).json;
    const out = await web.call("POST", "/t/logout", { jar, headers: { "x-csrf-token": csrf } });
    assert.equal(out.status, 200);
    assert.equal(jar.cookies.has("sb_session"), false, "cookie cleared");
  });

  test("a session ends after the idle time without requests", async () => {
    const jar = new CookieJar();
    const { csrf } = (await web.call("GET", "/t/form", { jar })).json;
    clock.advance(29 * 60_000);
    assert.equal(
      (await web.call("POST", "/t/count", { jar, headers: { "x-csrf-token": csrf } })).status,
      200,
    );
    // Used 29 minutes in: the idle period starts again.
    clock.advance(29 * 60_000);
    assert.equal(
      (await web.call("POST", "/t/count", { jar, headers: { "x-csrf-token": csrf } })).status,
      200,
    );
    clock.advance(31 * 60_000);
    problemOf(await web.call("POST", "/t/count", { jar, headers: { "x-csrf-token": csrf } }), 403);
    const fresh = await web.call("GET", "/t/form", { jar });
    assert.notEqual(fresh.json.csrf, csrf, "a new session");
    assert.equal(fresh.json.count, 0);
  });

  test("a session ends after its maximum lifetime however much it is used", async () => {
    const jar = new CookieJar();
    const { csrf } = (await web.call("GET", "/t/form", { jar })).json;
    for (let i = 0; i < 4; i++) {
      clock.advance(25 * 60_000);
      assert.equal(
        (await web.call("POST", "/t/count", { jar, headers: { "x-csrf-token": csrf } })).status,
        200,
      );
    }
    clock.advance(25 * 60_000); // 125 minutes after it began
    problemOf(await web.call("POST", "/t/count", { jar, headers: { "x-csrf-token": csrf } }), 403);
  });

  test("expired sessions are pruned from storage", async () => {
    const jar = new CookieJar();
    await web.call("GET", "/t/form", { jar });
    clock.advance(3 * 3_600_000);
    const pruned = await web.server.http!.context.sessions.prune();
    assert.ok(pruned >= 1);
    assert.equal(await web.server.services.storage.documents(SESSION_STORE).count(), 0);
  });

  test("admin-only pages: requireAdmin accepts an API token, refuses a portal session", async () => {
    const a = await web.call("GET", "/t/admin-only", { token: web.token });
    assert.deepEqual(a.json, { actor: "api:test-admin" });
    const jar = new CookieJar();
    const { csrf } = (await web.call("GET", "/t/form", { jar })).json;
    await web.call("POST", "/t/login", { jar, form: { _csrf: csrf, user: "pub@example.com" } });
    problemOf(await web.call("GET", "/t/admin-only", { jar }), 401);
  });
});

describe("sessions over HTTPS", () => {
  let web: WebServer;

  before(async () => {
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0"; // the test server's certificate is self-signed
    web = await startWebServer({ plugins: [pages], https: true });
  });
  after(async () => {
    await web?.stop();
  });

  test("the listener serves HTTPS; the cookie is Secure; HSTS is sent", async () => {
    assert.match(web.base, /^https:\/\//);
    const jar = new CookieJar();
    const a = await web.call("GET", "/t/form", { jar });
    assert.equal(a.status, 200);
    assert.match(sessionCookie(jar), /; Secure/i);
    assert.match(a.headers.get("strict-transport-security") ?? "", /max-age=\d+/);
  });
});
