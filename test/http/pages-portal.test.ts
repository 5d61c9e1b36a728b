/** The publisher portal's pages through Fastify inject: accounts, applications, apps and keys, notices, access. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generateKeyPair } from "../../src/licensing/index.js";
import type { Application } from "../../src/programme/model.js";
import {
  applicationForm,
  type Browser,
  loginFailures,
  type PagesKit,
  portalUser,
  startPages,
  titleOf,
} from "./pages-kit.js";

describe("publisher portal pages", () => {
  let kit: PagesKit;
  before(async () => {
    kit = await startPages();
  });
  after(async () => {
    await kit.stop();
  });

  it("shows the start page, sign-up and log-in pages to visitors", async () => {
    const b = kit.browser();
    const home = await b.get("/portal");
    assert.equal(home.status, 200);
    assert.match(titleOf(home), /Licences for client apps · Switchboard publisher portal/);
    assert.match(home.body, /<main id="main"/);
    assert.match(home.body, /<header class="site-header">/);
    assert.match(home.body, /<footer class="site-footer">/);
    for (const [url, title, testid] of [
      ["/portal/signup", "Sign up", "signup-form"],
      ["/portal/login", "Log in", "portal-login-form"],
      ["/portal/reset", "Reset your password", "reset-request-form"],
    ] as const) {
      const page = await b.get(url);
      assert.equal(page.status, 200, url);
      assert.match(titleOf(page), new RegExp(`^${title} · `));
      assert.match(page.body, new RegExp(`data-testid="${testid}"`));
      // Every input has a label.
      for (const m of page.body.matchAll(/<input id="([^"]+)"/g)) {
        assert.match(page.body, new RegExp(`<label for="${m[1]}"`), `${url}: input ${m[1]} has no label`);
      }
      assert.match(page.body, /name="_csrf" value="[^"]+"/, `${url}: form without CSRF token`);
    }
  });

  it("validates the sign-up form inline and does not tell whether an address is taken", async () => {
    const b = kit.browser();
    await b.get("/portal/signup");
    const bad = await b.post("/portal/signup", {
      email: "not-an-address",
      password: "short",
      confirm: "other",
    });
    assert.equal(bad.status, 422);
    assert.match(bad.body, /data-testid="form-errors"/);
    assert.match(bad.body, /data-testid="error-confirm"[^>]*>The two passwords differ\./);
    assert.match(bad.body, /id="f-confirm"[^>]*aria-describedby="f-confirm-error"[^>]*aria-invalid="true"/);
    const weak = await b.post("/portal/signup", {
      email: "x@example.com",
      password: "short",
      confirm: "short",
    });
    assert.equal(weak.status, 422);
    assert.match(weak.body, /data-testid="error-password"/);
    const first = await b.post("/portal/signup", {
      email: "same@example.com",
      password: "long enough pw",
      confirm: "long enough pw",
    });
    assert.equal(first.status, 200);
    assert.match(first.body, /data-testid="check-mail"/);
    await b.get(await kit.linkIn("same@example.com", "/portal/verify?token="));
    const again = await b.post("/portal/signup", {
      email: "same@example.com",
      password: "another password",
      confirm: "another password",
    });
    assert.equal(again.status, 200);
    assert.match(again.body, /data-testid="check-mail"/);
  });

  it("refuses a form without the CSRF token", async () => {
    const b = kit.browser();
    await b.get("/portal/login");
    const res = await b.post(
      "/portal/login",
      { email: "a@example.com", password: "whatever pw" },
      { csrf: false },
    );
    assert.equal(res.status, 403);
    assert.match(res.body, /<title>Not allowed/);
    const wrong = await b.post("/portal/login", {
      email: "a@example.com",
      password: "x",
      _csrf: "forged-token-value",
    });
    assert.equal(wrong.status, 403);
    // A script gets a problem document.
    const api = await b.post(
      "/portal/login",
      { email: "a@example.com", password: "x" },
      { csrf: false, headers: { accept: "application/json" } },
    );
    assert.equal(api.status, 403);
    assert.match(String(api.headers["content-type"]), /application\/problem\+json/);
    assert.equal(JSON.parse(api.body).type, "/problems/csrf-failed");
  });

  it("confirms the address by the mailed link, logs in and out", async () => {
    const b = kit.browser();
    await b.get("/portal/signup");
    await b.post("/portal/signup", {
      email: "pat@example.com",
      password: "pat's password",
      confirm: "pat's password",
    });
    await b.get("/portal/login");
    const early = await b.post("/portal/login", { email: "pat@example.com", password: "pat's password" });
    assert.equal(early.status, 401);
    assert.match(early.body, /confirm your email address first/);
    const bogus = await b.get("/portal/verify?token=not-a-real-token");
    assert.equal(bogus.status, 400);
    assert.match(bogus.body, /This link is not valid/);
    const verified = await b.get(await kit.linkIn("pat@example.com", "/portal/verify?token="));
    assert.equal(verified.status, 303);
    const loginPage = await b.get(verified.location!);
    assert.match(loginPage.body, /Your email address is confirmed/);
    const wrong = await b.post("/portal/login", { email: "pat@example.com", password: "wrong password" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body, /The email address or the password is wrong/);
    const ok = await b.post("/portal/login", { email: "pat@example.com", password: "pat's password" });
    assert.equal(ok.status, 303);
    assert.equal(ok.location, "/portal");
    const home = await b.get("/portal");
    assert.match(titleOf(home), /^Overview/);
    assert.match(home.body, /data-testid="signed-in-as">pat@example.com</);
    assert.match(home.body, /No apps yet: apply for a licence/);
    assert.match(home.body, /No applications yet\./);
    const out = await b.post("/portal/logout", {});
    assert.equal(out.status, 303);
    const after = await b.get("/portal/applications");
    assert.equal(after.status, 303);
    assert.match(after.location!, /^\/portal\/login\?next=%2Fportal%2Fapplications/);
  });

  it("resets a forgotten password; older sessions end", async () => {
    const old = await portalUser(kit, "rita@example.com", "first password");
    const b = kit.browser();
    await b.get("/portal/reset");
    const asked = await b.post("/portal/reset", { email: "rita@example.com" });
    assert.match(asked.body, /data-testid="check-mail"/);
    const link = await kit.linkIn("rita@example.com", "/portal/reset?token=");
    const form = await b.get(link);
    assert.match(form.body, /data-testid="reset-password-form"/);
    const token = new URL(link, "https://x").searchParams.get("token")!;
    const mismatch = await b.post("/portal/reset", {
      token,
      password: "second password",
      confirm: "different",
    });
    assert.equal(mismatch.status, 422);
    const done = await b.post("/portal/reset", {
      token,
      password: "second password",
      confirm: "second password",
    });
    assert.equal(done.status, 303);
    const oldView = await old.get("/portal/applications");
    assert.equal(oldView.status, 303, "the session from before the reset has ended");
    await b.get("/portal/login");
    assert.equal(
      (await b.post("/portal/login", { email: "rita@example.com", password: "second password" })).status,
      303,
    );
  });

  it("validates the application form, shows the status, escapes what publishers typed", async () => {
    const b = await portalUser(kit, "sam@example.com");
    const form = await b.get("/portal/apply");
    assert.equal(form.status, 200);
    assert.match(titleOf(form), /^Apply for a licence/);
    assert.match(form.body, /value="sam@example.com"/);
    const bad = await b.post(
      "/portal/apply",
      applicationForm({ organisation: "", platforms: [], expectedUsers: "many", termsAccepted: "" }),
    );
    assert.equal(bad.status, 422);
    for (const f of ["organisation", "platforms", "expectedUsers", "termsAccepted"]) {
      assert.match(bad.body, new RegExp(`data-testid="error-${f}"`), f);
    }
    assert.match(bad.body, /value="Example Chat"/, "valid fields keep their values");
    const evil = "<script>alert('x')</script> Evil & Co";
    const sent = await b.post(
      "/portal/apply",
      applicationForm({ organisation: evil, appName: "<b>Bold</b> Chat" }),
    );
    assert.equal(sent.status, 303);
    const page = await b.get(sent.location!);
    assert.match(page.body, /submitted/);
    assert.ok(!page.body.includes("<script>alert"), "no script tag from user input");
    assert.ok(page.body.includes("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Evil &amp; Co"));
    assert.ok(page.body.includes("&lt;b&gt;Bold&lt;/b&gt; Chat"));
    const list = await b.get("/portal/applications");
    assert.match(list.body, /data-testid="applications-table"/);
    assert.match(list.body, /badge-info">submitted</);
    // Another publisher cannot see it.
    const other = await portalUser(kit, "nosy@example.com");
    const id = sent.location!.split("/").pop()!;
    const peek = await other.get(`/portal/applications/${id}`);
    assert.equal(peek.status, 404);
    assert.ok(!peek.body.includes("Evil"));
  });

  it("takes an application for a gateway licence; once approved the page names the licence and its domain", async () => {
    const b = await portalUser(kit, "bridges@irc.example");
    const form = await b.get("/portal/apply");
    assert.match(form.body, /name="scope" value="gateway"/);
    assert.match(form.body, /name="domain"/);
    const noDomain = await b.post(
      "/portal/apply",
      applicationForm({
        organisation: "Bridges Ltd",
        appName: "IRC bridge",
        scope: "gateway",
        platforms: [],
        domain: "",
      }),
    );
    assert.equal(noDomain.status, 422);
    assert.match(noDomain.body, /data-testid="error-domain"/);
    assert.doesNotMatch(
      noDomain.body,
      /data-testid="error-platforms"/,
      "platforms are optional for a gateway",
    );
    const sent = await b.post(
      "/portal/apply",
      applicationForm({
        organisation: "Bridges Ltd",
        appName: "IRC bridge",
        scope: "gateway",
        platforms: [],
        domain: "IRC.gw.Example.org",
      }),
    );
    assert.equal(sent.status, 303);
    const id = sent.location!.split("/").pop()!;
    const submitted = await b.get(sent.location!);
    assert.match(submitted.body, /Gateway domain[\s\S]*?irc\.gw\.example\.org/);
    const approved = (await kit.run("application approve", { id })) as {
      application: Application;
      licence: { id: string; scope: string; domain?: string };
    };
    assert.equal(approved.licence.scope, "gateway");
    assert.equal(approved.licence.domain, "irc.gw.example.org");
    const page = await b.get(`/portal/applications/${id}`);
    assert.match(page.body, /badge-ok">approved</);
    assert.match(
      page.body,
      new RegExp(
        `gateway licence <strong class="mono">${approved.licence.id}</strong> is for <strong class="mono">irc\\.gw\\.example\\.org<`,
      ),
    );
    assert.doesNotMatch(page.body, /data-testid="open-app"/, "a gateway licence registers no app");
  });

  describe("after approval", () => {
    let b: Browser;
    let application: Application;
    before(async () => {
      b = await portalUser(kit, "dev@chat.example");
      const sent = await b.post(
        "/portal/apply",
        applicationForm({ appName: "Chat One", website: "https://chat.example" }),
      );
      assert.equal(sent.status, 303);
      const id = sent.location!.split("/").pop()!;
      const approved = (await kit.run("application approve", { id, clientId: "example.chat.one" })) as {
        application: Application;
      };
      application = approved.application;
    });

    it("shows the application approved, with the way to the app", async () => {
      const page = await b.get(`/portal/applications/${application.id}`);
      assert.match(page.body, /badge-ok">approved</);
      assert.match(page.body, /href="\/portal\/apps\/example.chat.one"/);
      const home = await b.get("/portal");
      assert.match(home.body, /data-testid="app-link"/);
    });

    it("shows the app's client id, licence, keys and usage", async () => {
      const page = await b.get("/portal/apps/example.chat.one");
      assert.equal(page.status, 200);
      assert.match(titleOf(page), /^App Chat One/);
      assert.match(page.body, /data-testid="client-id">example\.chat\.one</);
      assert.match(page.body, /data-testid="licence-table"/);
      assert.match(page.body, /badge-ok">active</);
      assert.match(page.body, /No keys yet/);
      assert.match(page.body, /id="generate-key"[^>]*hidden/);
      assert.match(page.body, /src="\/assets\/keys\.js\?v=[0-9a-f]+"/);
      assert.match(page.body, /data-testid="usage"/);
      const usage = await b.get("/portal/apps/example.chat.one/usage", { "hx-request": "true" });
      assert.equal(usage.status, 200);
      assert.match(usage.body, /^<section id="usage"/);
    });

    it("registers a public key, refuses bad ones inline, rotates by revoking", async () => {
      const bad = await b.post("/portal/apps/example.chat.one/keys", { keyId: "k1", publicKey: "not a key" });
      assert.equal(bad.status, 422);
      assert.match(bad.body, /data-testid="error-publicKey"/);
      const priv = generateKeyPair();
      const leaked = await b.post("/portal/apps/example.chat.one/keys", {
        keyId: "k1",
        publicKey: priv.privateKeyPem,
      });
      assert.equal(leaked.status, 422);
      assert.match(leaked.body, /This is a private key/);
      assert.ok(!leaked.body.includes("PRIVATE KEY-----"), "the private key is not echoed back");
      const k1 = generateKeyPair();
      const added = await b.postAndFollow("/portal/apps/example.chat.one/keys", {
        keyId: "k1",
        publicKey: k1.publicKey,
      });
      assert.match(added.body, /Key k1 registered/);
      assert.match(
        added.body,
        new RegExp(`data-testid="public-key-k1">${k1.publicKey.replace(/[+/]/g, "\\$&")}<`),
      );
      const dup = await b.post("/portal/apps/example.chat.one/keys", {
        keyId: "k1",
        publicKey: generateKeyPair().publicKey,
      });
      assert.equal(dup.status, 422);
      assert.match(dup.body, /data-testid="error-keyId"/);
      const k2 = generateKeyPair();
      await b.postAndFollow("/portal/apps/example.chat.one/keys", { keyId: "k2", publicKey: k2.publicKey });
      const revoked = await b.postAndFollow("/portal/apps/example.chat.one/keys/k1/revoke", {});
      assert.match(revoked.body, /Key k1 revoked/);
      const audit = (await kit.run("audit list", { kind: "key." })) as {
        entries: { kind: string; data: { actor: string } }[];
      };
      assert.ok(audit.entries.some((e) => e.kind === "key.add" && e.data.actor.startsWith("portal:")));
    });

    it("keeps other publishers away from the app", async () => {
      const other = await portalUser(kit, "stranger@example.com");
      const page = await other.get("/portal/apps/example.chat.one");
      assert.equal(page.status, 404);
      const post = await other.post("/portal/apps/example.chat.one/keys", {
        keyId: "k9",
        publicKey: generateKeyPair().publicKey,
      });
      assert.equal(post.status, 404);
    });

    it("shows notices and records reading and acknowledgement", async () => {
      const empty = await b.get("/portal/notices");
      assert.match(empty.body, /No notices yet/);
      const detail = (await kit.run("notice send", {
        subject: "Cutoff <soon>",
        body: "Unlicensed clients stop working on 1 March.",
        audience: "all",
      })) as { notice: { id: string } };
      const home = await b.get("/portal");
      assert.match(home.body, /data-testid="notices-waiting"/);
      const list = await b.get("/portal/notices");
      assert.match(list.body, /Cutoff &lt;soon&gt;/);
      assert.match(list.body, /new: please acknowledge/);
      const page = await b.get(`/portal/notices/${detail.notice.id}`);
      assert.equal(page.status, 200);
      assert.match(page.body, /data-testid="acknowledge"/);
      const read = (await kit.run("notice show", { id: detail.notice.id })) as {
        recipients: { readAt?: number; email: string }[];
      };
      assert.ok(read.recipients.some((r) => r.readAt !== undefined));
      const acked = await b.postAndFollow(`/portal/notices/${detail.notice.id}/ack`, {});
      assert.match(acked.body, /your acknowledgement has been recorded/);
      assert.match(acked.body, /data-testid="acknowledged"/);
      const shown = (await kit.run("notice show", { id: detail.notice.id })) as {
        recipients: { acknowledgedAt?: number; acknowledgedBy?: string; publisherId: string }[];
      };
      const mine = shown.recipients.find((r) => r.publisherId === application.publisherId)!;
      assert.ok(mine.acknowledgedAt !== undefined);
      assert.match(mine.acknowledgedBy!, /^portal:/);
    });
  });

  it("limits sign-ups per address: the fourth in an hour gets 429 with Retry-After", async () => {
    const b = kit.browser();
    await b.get("/portal/signup");
    const form = { email: "flood@example.com", password: "flood password", confirm: "flood password" };
    for (let i = 0; i < 3; i++) {
      const r = await b.post("/portal/signup", form);
      assert.equal(
        r.status,
        200,
        `${i} ${b.address} ${/data-testid="error-message">([^<]*)/.exec(r.body)?.[1]}`,
      );
    }
    const limited = await b.post("/portal/signup", form);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers["retry-after"]) > 0);
    assert.match(limited.body, /Too many attempts/);
  });

  it("limits failed logins per client address across accounts: a password spray stops at limits.authFailuresPerAddress", async () => {
    await portalUser(kit, "sprayed@example.com", "the real password 1");
    const failures = () => loginFailures(kit, "portal");
    const before = await failures();
    const b = kit.browser();
    await b.get("/portal/login");
    // One password tried over many addresses: every account is new to the per-account limit.
    for (let i = 0; i < 10; i++) {
      const r = await b.post("/portal/login", { email: `victim${i}@example.com`, password: "Summer2026!!" });
      assert.equal(r.status, 401, `attempt ${i + 1}`);
    }
    const limited = await b.post("/portal/login", {
      email: "sprayed@example.com",
      password: "the real password 1",
    });
    assert.equal(limited.status, 429, "the eleventh attempt from that address waits, right password or not");
    assert.ok(Number(limited.headers["retry-after"]) > 0);
    assert.match(limited.body, /Too many attempts/);
    // The budget is the web's: the console refuses that address too.
    await b.get("/console/login");
    const consoleTry = await b.post("/console/login", { username: "anyone", password: "whatever" });
    assert.equal(consoleTry.status, 429);
    // Another address is not held back.
    const other = kit.browser();
    await other.get("/portal/login");
    const ok = await other.post("/portal/login", {
      email: "sprayed@example.com",
      password: "the real password 1",
    });
    assert.equal(ok.status, 303, ok.body.slice(0, 500));
    assert.equal(await failures(), before + 11, "every refused portal login is counted");
  });

  it("changes the password of a logged-in account", async () => {
    const b = await portalUser(kit, "chg@example.com", "old password 123");
    const page = await b.get("/portal/account");
    assert.match(page.body, /data-testid="account-email">chg@example.com</);
    const wrong = await b.post("/portal/account/password", {
      currentPassword: "not it at all",
      password: "new password 456",
      confirm: "new password 456",
    });
    assert.equal(wrong.status, 422);
    assert.match(wrong.body, /data-testid="error-currentPassword"/);
    const ok = await b.postAndFollow("/portal/account/password", {
      currentPassword: "old password 123",
      password: "new password 456",
      confirm: "new password 456",
    });
    assert.match(ok.body, /Your password has been changed/);
    assert.equal((await b.get("/portal/applications")).status, 200, "this browser stays logged in");
  });

  it("sends console admins to the portal login, and scripts get a 401 problem", async () => {
    const b = kit.browser();
    const page = await b.get("/portal/notices");
    assert.equal(page.status, 303);
    const api = await b.get("/portal/notices", { accept: "application/json" });
    assert.equal(api.status, 401);
    assert.equal(JSON.parse(api.body).status, 401);
    const missing = await b.get("/portal/no-such-page");
    assert.equal(missing.status, 404);
    assert.match(missing.body, /Page not found/);
  });
});
