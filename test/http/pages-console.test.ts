/** The admin console's pages through Fastify inject: login, access, every page, actions through the commands. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AccessPolicy, Licence } from "../../src/licensing/index.js";
import {
  dailyStore,
  generateKeyPair,
  recordDailyClient,
  utcDay,
  writeLiveSnapshot,
} from "../../src/licensing/index.js";
import type { Application } from "../../src/programme/model.js";
import {
  applicationForm,
  type Browser,
  consoleAdmin,
  loginFailures,
  type PagesKit,
  portalUser,
  startPages,
  titleOf,
} from "./pages-kit.js";

/** The JSON in a canvas's data-chart attribute, unescaped as a browser would. */
function chartData(body: string, id: string): string | undefined {
  const attr = new RegExp(`<canvas id="${id}" data-chart="([^"]*)"`).exec(body)?.[1];
  return attr
    ?.replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

const PAGES: [string, string, string][] = [
  ["/console", "Dashboard", "live-panel"],
  ["/console/applications", "Applications", "tab-open"],
  ["/console/apps", "Apps and keys", "apps-search"],
  ["/console/licences", "Licences", "licences-search"],
  ["/console/policy", "Access policy", "policy-summary"],
  ["/console/notices", "Notices", "compose-notice"],
  ["/console/notices/new", "Compose a notice", "send-notice"],
  ["/console/accounts", "Accounts", "accounts-table"],
  ["/console/audit", "Audit log", "audit-search"],
  ["/console/mail", "Mail", "mail-counts"],
];

describe("admin console pages", () => {
  let kit: PagesKit;
  let admin: Browser;
  before(async () => {
    kit = await startPages();
    admin = await consoleAdmin(kit);
  });
  after(async () => {
    await kit.stop();
  });

  it("logs in only accounts holding the admin role, with one message for every refusal", async () => {
    await kit.addAccount("plain", "plain password 1");
    const b = kit.browser();
    const form = await b.get("/console/login");
    assert.equal(form.status, 200);
    assert.match(titleOf(form), /^Log in · Switchboard console/);
    assert.match(form.body, /<label for="f-username">/);
    const empty = await b.post("/console/login", { username: "", password: "" });
    assert.equal(empty.status, 422);
    assert.match(empty.body, /data-testid="error-username"/);
    const texts = [];
    for (const [username, password] of [
      ["plain", "plain password 1"],
      ["boss", "wrong"],
      ["nobody", "whatever"],
    ]) {
      const res = await b.post("/console/login", { username: username!, password: password! });
      assert.equal(res.status, 401, `${username}`);
      texts.push(/data-testid="form-errors">[\s\S]*?<li>([^<]*)<\/li>/.exec(res.body)?.[1]);
    }
    assert.equal(new Set(texts).size, 1);
    const ok = await b.post("/console/login", { username: "boss", password: "admin password 1" });
    assert.equal(ok.status, 303);
    assert.equal(ok.location, "/console");
  });

  it("throttles repeated failed logins with 429", async () => {
    await kit.addAccount("target", "target password 1", true);
    const b = kit.browser();
    await b.get("/console/login");
    let last = 0;
    for (let i = 0; i < 8 && last !== 429; i++) {
      last = (await b.post("/console/login", { username: "target", password: `guess ${i}` })).status;
    }
    assert.equal(last, 429);
    const page = await b.post("/console/login", { username: "target", password: "target password 1" });
    assert.equal(page.status, 429, "even the right password waits");
    assert.ok(Number(page.headers["retry-after"]) > 0);
    assert.match(page.body, /Too many failed attempts/);
  });

  it("counts refused logins of the console form in switchboard_web_login_failures_total", async () => {
    const before = await loginFailures(kit, "console");
    const b = kit.browser();
    await b.get("/console/login");
    assert.equal((await b.post("/console/login", { username: "boss", password: "not it" })).status, 401);
    assert.equal((await b.post("/console/login", { username: "nobody", password: "not it" })).status, 401);
    assert.equal(await loginFailures(kit, "console"), before + 2);
  });

  it("sends visitors to the login page and refuses portal users and scripts", async () => {
    const visitor = kit.browser();
    for (const [url] of PAGES) {
      const res = await visitor.get(url);
      assert.equal(res.status, 303, url);
      assert.equal(res.location, `/console/login?next=${encodeURIComponent(url)}`);
    }
    const api = await visitor.get("/console/apps", { accept: "application/json" });
    assert.equal(api.status, 401);
    assert.match(String(api.headers["content-type"]), /application\/problem\+json/);
    const publisher = await portalUser(kit, "pub@example.com");
    const refused = await publisher.get("/console");
    assert.equal(refused.status, 403);
    assert.match(refused.body, /<title>Not allowed/);
    const post = await publisher.post("/console/accounts", { name: "intruder", password: "x password 1" });
    assert.equal(post.status, 403);
    assert.equal(await kit.server.services.storage.accounts.exists("intruder"), false);
  });

  it("renders every page with its title, landmarks and navigation", async () => {
    for (const [url, title, testid] of PAGES) {
      const page = await admin.get(url);
      assert.equal(page.status, 200, `${url}: ${page.body.slice(0, 500)}`);
      assert.match(titleOf(page), new RegExp(`^${title} · Switchboard console$`), url);
      assert.match(page.body, new RegExp(`data-testid="${testid}"`), url);
      assert.match(page.body, /<nav class="site-nav" aria-label="Main">/);
      assert.match(page.body, /data-testid="signed-in-as">boss</);
      assert.match(String(page.headers["content-security-policy"]), /script-src 'self'/);
      for (const m of page.body.matchAll(/<(?:input|select|textarea) id="([^"]+)"/g)) {
        assert.match(page.body, new RegExp(`<label for="${m[1]}"`), `${url}: ${m[1]} has no label`);
      }
    }
  });

  it("says when no SMTP relay is configured, and gives the confirmation link of a pending sign-up", async () => {
    const dashboard = await admin.get("/console");
    assert.match(dashboard.body, /data-testid="no-relay"[\s\S]*No SMTP relay is configured/);
    const visitor = kit.browser();
    await visitor.get("/portal/signup");
    const email = "waiting@example.com";
    const signed = await visitor.post("/portal/signup", {
      email,
      password: "a long password",
      confirm: "a long password",
    });
    assert.equal(signed.status, 200);
    const page = await admin.get("/console/mail");
    assert.match(page.body, /data-testid="no-relay"/);
    const link = /data-testid="confirmation-link">[^<]*?(\/portal\/verify\?token=[A-Za-z0-9_-]+)</.exec(
      page.body,
    )?.[1];
    assert.ok(link, "the page shows the pending confirmation link");
    assert.equal(link, await kit.linkIn(email, "/portal/verify?token="), "the link of the mail");
    assert.match(page.body, /data-testid="outbox-table"[\s\S]*Confirm your email address/);
    // "Send again" queues the mail once more, and the audit log says who did it.
    const mailId = /action="\/console\/mail\/(mail_[^/]+)\/resend"/.exec(page.body)?.[1];
    assert.ok(mailId);
    const before = (await kit.mailsTo(email)).length;
    const resent = await admin.postAndFollow(`/console/mail/${mailId}/resend`, {});
    assert.match(resent.body, /data-testid="flash-success"[^>]*>[^<]*queued/);
    assert.ok((await kit.mailsTo(email)).length >= before);
    const audit = await admin.get("/console/audit?kind=mail.resend");
    assert.match(audit.body, new RegExp(`mail:${mailId}[\\s\\S]*console:boss`));
    // Following the link confirms the address.
    assert.equal((await visitor.get(link)).status, 303);
    const after = await admin.get("/console/mail");
    assert.doesNotMatch(
      after.body,
      new RegExp(email.replace(".", "\\.") + "</td>"),
      "confirmed: no longer waiting",
    );
  });

  it("shows clear empty states", async () => {
    const apps = await admin.get("/console/apps");
    assert.match(apps.body, /No apps yet/);
    const queue = await admin.get("/console/applications");
    assert.match(queue.body, /No applications yet\./);
    const notices = await admin.get("/console/notices");
    assert.match(notices.body, /No notices sent yet\./);
    const dash = await admin.get("/console");
    assert.match(dash.body, /No activity recorded yet/);
  });

  it("refuses actions without the CSRF token", async () => {
    const res = await admin.post(
      "/console/accounts",
      { name: "sneaky", password: "sneaky pass 1" },
      { csrf: false },
    );
    assert.equal(res.status, 403);
    assert.equal(await kit.server.services.storage.accounts.exists("sneaky"), false);
    const htmx = await admin.post(
      "/console/accounts",
      { name: "sneaky" },
      { csrf: false, headers: { "hx-request": "true" } },
    );
    assert.equal(htmx.status, 403);
    assert.equal(htmx.headers["hx-retarget"], "#flashes");
  });

  describe("applications, apps and licences", () => {
    let application: Application;
    before(async () => {
      const publisher = await portalUser(kit, "owner@evil.example");
      const sent = await publisher.post(
        "/portal/apply",
        applicationForm({ organisation: "<script>alert(1)</script> Corp", appName: "Evil <i>Chat</i>" }),
      );
      assert.equal(sent.status, 303);
      const id = sent.location!.split("/").pop()!;
      application = ((await kit.run("application show", { id })) as { application: Application }).application;
    });

    it("lists the application in the queue, escaped", async () => {
      const queue = await admin.get("/console/applications");
      assert.match(queue.body, /1 application waiting for review/);
      assert.ok(!queue.body.includes("<script>alert(1)"));
      assert.ok(queue.body.includes("&lt;script&gt;alert(1)&lt;/script&gt; Corp"));
      const page = await admin.get(`/console/applications/${application.id}`);
      assert.equal(page.status, 200);
      assert.match(page.body, /data-testid="approve-submit"/);
      assert.ok(page.body.includes("Evil &lt;i&gt;Chat&lt;/i&gt;"));
    });

    it("takes an application into review", async () => {
      const reviewed = await admin.postAndFollow(`/console/applications/${application.id}/review`, {});
      assert.match(reviewed.body, /now under review/);
      assert.match(reviewed.body, /badge-warn">under-review</);
    });

    it("validates the rejection reason and the approval inline", async () => {
      const reject = await admin.post(`/console/applications/${application.id}/reject`, { reason: "" });
      assert.equal(reject.status, 422);
      assert.match(reject.body, /data-testid="error-reason"/);
      const approve = await admin.post(`/console/applications/${application.id}/approve`, {
        clientId: "Not Valid!",
      });
      assert.equal(approve.status, 422);
      assert.match(approve.body, /data-testid="form-errors"/);
      assert.match(approve.body, /invalid client id/);
    });

    it("approves through the command: app and licence created, publisher mailed", async () => {
      const res = await admin.postAndFollow(`/console/applications/${application.id}/approve`, {
        clientId: "evil.chat",
        maxSessions: "50",
      });
      assert.match(res.body, /Approved: app evil\.chat/);
      assert.match(res.body, /data-testid="approved-client-id"/);
      const mails = await kit.mailsTo("owner@evil.example");
      assert.ok(mails.some((m) => /approved/i.test(m.subject)));
      const audit = await admin.get("/console/audit?kind=app.register");
      assert.match(audit.body, /console:boss/);
    });

    it("lists and searches apps; the app page shows keys and licences", async () => {
      const list = await admin.get("/console/apps?q=evil");
      assert.match(list.body, /href="\/console\/apps\/evil.chat"/);
      assert.ok(list.body.includes("&lt;script&gt;alert(1)&lt;/script&gt; Corp"));
      const none = await admin.get("/console/apps?q=zzz", { "hx-request": "true" });
      assert.match(none.body, /No app matches “zzz”/);
      const page = await admin.get("/console/apps/evil.chat");
      assert.equal(page.status, 200);
      assert.match(page.body, /data-testid="app-client-id">evil\.chat</);
      assert.match(page.body, /data-testid="licences-table"/);
      const missing = await admin.get("/console/apps/no.such.app");
      assert.equal(missing.status, 404);
      assert.match(missing.body, /Page not found/);
    });

    it("adds and revokes keys, suspends, reinstates, extends and revokes licences", async () => {
      const bad = await admin.post("/console/apps/evil.chat/keys", { keyId: "k1", publicKey: "nope" });
      assert.equal(bad.status, 422);
      assert.match(bad.body, /invalid public key/);
      await admin.postAndFollow("/console/apps/evil.chat/keys", {
        keyId: "k1",
        publicKey: generateKeyPair().publicKey,
      });
      const revoked = await admin.postAndFollow("/console/apps/evil.chat/keys/k1/revoke", {});
      assert.match(revoked.body, /Key k1 of evil\.chat revoked/);
      const { licences } = (await kit.run("licence list", { app: "evil.chat" })) as { licences: Licence[] };
      const id = licences[0]!.id;
      const suspended = await admin.postAndFollow(`/console/licences/${id}/suspend`, {
        back: "/console/apps/evil.chat",
      });
      assert.match(suspended.body, new RegExp(`Licence ${id} suspended`));
      assert.match(suspended.body, /badge-warn">suspended</);
      await admin.postAndFollow(`/console/licences/${id}/reinstate`, {});
      const extended = await admin.postAndFollow(`/console/licences/${id}/extend`, {
        validUntil: "2031-06-30T12:00",
      });
      assert.match(extended.body, /now ends 2031-06-30T12:00:00Z/);
      const badDate = await admin.postAndFollow(`/console/licences/${id}/extend`, { validUntil: "someday" });
      assert.match(badDate.body, /flash-error/);
      const filtered = await admin.get("/console/licences?status=active&q=evil");
      assert.match(filtered.body, new RegExp(id));
      const offsite = await admin.post(`/console/licences/${id}/revoke`, {
        back: "https://elsewhere.example/",
      });
      assert.equal(offsite.location, "/console/licences", "back must stay in the console");
      const gone = (await kit.run("licence list", { app: "evil.chat" })) as { licences: Licence[] };
      assert.equal(gone.licences[0]!.status, "revoked");
    });
  });

  describe("policy editor", () => {
    before(async () => {
      // An account seen today with an unlicensed client, and one with a licensed app's client.
      await kit.run("publisher add", { organisation: "Good Apps", email: "good@example.com" });
      const { publishers } = (await kit.run("publisher list", {})) as {
        publishers: { id: string; organisation: string }[];
      };
      const good = publishers.find((p) => p.organisation === "Good Apps")!;
      await kit.run("app register", {
        clientId: "good.chat",
        name: "Good Chat",
        publisher: good.id,
        platform: ["linux"],
      });
      await kit.run("licence grant", { clientId: "good.chat" });
      const now = kit.server.services.clock.now();
      const store = dailyStore(kit.server.services.storage);
      await recordDailyClient(store, utcDay(now), "alice", { verified: false }, false, now);
      await recordDailyClient(
        store,
        utcDay(now),
        "bob",
        { clientId: "good.chat", version: "1.0", verified: true },
        true,
        now,
      );
    });

    it("previews what a change would cut off without saving it", async () => {
      const before = (await kit.run("policy show", {})) as { policy: AccessPolicy };
      const preview = await admin.post(
        "/console/policy",
        { section: "schedule", intent: "preview", mode: "enforce" },
        {
          headers: { "hx-request": "true" },
        },
      );
      assert.equal(preview.status, 200);
      assert.match(preview.body, /data-testid="policy-preview"/);
      assert.match(
        preview.body,
        /data-testid="preview-today-summary"><strong>1<\/strong> client of <strong>1<\/strong> account/,
      );
      assert.match(preview.body, /unlicensed-client/);
      // Live sessions of this server are previewed too (none are open here).
      assert.match(preview.body, /data-testid="preview-live-summary"><strong>0<\/strong> session/);
      const after = (await kit.run("policy show", {})) as { policy: AccessPolicy };
      assert.deepEqual(after.policy, before.policy, "a preview saves nothing");
      const appRule = await admin.post("/console/policy", {
        section: "app",
        intent: "preview",
        app: "good.chat",
        minVersion: "2.0",
      });
      assert.match(appRule.body, /version-too-old/);
      assert.match(appRule.body, /data-testid="preview-today-summary"><strong>1<\/strong> client/);
      const audit = (await kit.run("audit list", { kind: "policy.set" })) as { entries: unknown[] };
      assert.equal(audit.entries.length, 0);
    });

    it("shows validation errors in place and saves through policy set", async () => {
      const bad = await admin.post("/console/policy", {
        section: "app",
        intent: "save",
        app: "good.chat",
        minVersion: "two",
      });
      assert.equal(bad.status, 422);
      assert.match(bad.body, /data-testid="form-errors"/);
      const staged = await admin.postAndFollow("/console/policy", {
        section: "schedule",
        intent: "save",
        mode: "warn",
        stageAt: "2031-01-15T00:00",
        stageMode: "enforce",
      });
      assert.match(staged.body, /Policy saved/);
      assert.match(staged.body, /data-testid="policy-cutoff"><time datetime="2031-01-15T00:00:00.000Z"/);
      const shown = (await kit.run("policy show", {})) as { policy: AccessPolicy };
      assert.equal(shown.policy.mode, "warn");
      assert.equal(shown.policy.stages.length, 1);
      // A warn stage after the enforce one relaxes enforcement: the preview says so before saving.
      const relaxing = await admin.post("/console/policy", {
        section: "schedule",
        intent: "preview",
        mode: "warn",
        stageAt: "2031-02-01T00:00",
        stageMode: "warn",
      });
      assert.match(relaxing.body, /data-testid="preview-relaxation"/);
      assert.match(
        relaxing.body,
        /the stage of <time datetime="2031-02-01T00:00:00.000Z">2031-02-01 00:00 UTC<\/time> \(warn\) puts accounts that were in enforce back to warn/,
      );
      const tightening = await admin.post("/console/policy", {
        section: "schedule",
        intent: "preview",
        mode: "warn",
        stageAt: "2031-02-01T00:00",
        stageMode: "enforce",
      });
      assert.doesNotMatch(tightening.body, /preview-relaxation/);
      // The audit log shows the stage's instant in ISO-8601, not in epoch milliseconds.
      const stagedAudit = await admin.get("/console/audit?kind=policy.set");
      assert.match(stagedAudit.body, /2031-01-15T00:00:00\.000Z/);
      assert.doesNotMatch(stagedAudit.body, /&quot;at&quot;:\d|"at":\d/);
      await admin.postAndFollow("/console/policy", {
        section: "exemptions",
        intent: "save",
        exempt: "tester, support",
      });
      const removed = await admin.postAndFollow("/console/policy", {
        section: "schedule",
        intent: "save",
        mode: "warn",
        removeStage: String(shown.policy.stages[0]!.at),
      });
      assert.match(removed.body, /No stages scheduled/);
      const audit = await admin.get("/console/audit?kind=policy.set");
      assert.match(audit.body, /console:boss/);
      assert.match(audit.body, /exemptions/);
    });
  });

  it("draws adoption over time from the daily figures", async () => {
    const dash = await admin.get("/console");
    assert.match(dash.body, /<canvas id="adoption-chart" data-chart="[^"]+" role="img" aria-label="[^"]+"/);
    const json = chartData(dash.body, "adoption-chart");
    assert.ok(json);
    const data = JSON.parse(json) as {
      days: string[];
      supported: (number | null)[];
      licensed: (number | null)[];
    };
    assert.equal(data.days.length, 30);
    assert.equal(data.days.at(-1), utcDay(kit.server.services.clock.now()));
    assert.equal(data.supported.at(-1), 50);
    assert.equal(data.licensed.at(-1), 50);
    assert.equal(data.supported[0], null, "days without activity are gaps");
    assert.match(dash.body, /data-testid="supported-share">50\.0 %</);
    assert.match(dash.body, /src="\/assets\/chart\.umd\.min\.js\?v=[0-9a-f]+"/);
    const week = await admin.get("/console?days=7");
    assert.match(week.body, /Adoption over the last 7 days/);
  });

  describe("notices", () => {
    it("validates the compose form and shows the recipients before sending", async () => {
      const empty = await admin.post("/console/notices/new", {
        intent: "send",
        audienceKind: "all",
        subject: "",
        body: "",
      });
      assert.equal(empty.status, 422);
      assert.match(empty.body, /data-testid="error-subject"/);
      assert.match(empty.body, /data-testid="error-body"/);
      const one = await admin.post("/console/notices/new", {
        intent: "send",
        audienceKind: "publisher",
        subject: "s",
        body: "b",
      });
      assert.equal(one.status, 422);
      assert.match(one.body, /data-testid="error-publisherId"/);
      const audience = await admin.post("/console/notices/new", { intent: "audience", audienceKind: "all" });
      assert.equal(audience.status, 200);
      assert.match(audience.body, /data-testid="audience-table"/);
      assert.match(audience.body, /Good Apps/);
    });

    it("sends a notice, tracks it per publisher, and sends reminders", async () => {
      const sent = await admin.postAndFollow("/console/notices/new", {
        intent: "send",
        audienceKind: "all",
        subject: "Cutoff on 15 January",
        body: "Please ship licensed builds.",
        requiresAck: "yes",
      });
      assert.match(sent.body, /Notice queued for \d+ publisher/);
      assert.match(sent.body, /data-testid="recipients-table"/);
      assert.match(sent.body, /not acknowledged/);
      assert.match(sent.body, /badge-warn">pending</);
      const url = /hx-get="(\/console\/notices\/ntc_[^"]+)"/.exec(sent.body)?.[1];
      assert.ok(url);
      const reminded = await admin.postAndFollow(`${url}/remind`, {});
      assert.match(reminded.body, /Reminded \d+ publisher/);
      const list = await admin.get("/console/notices");
      assert.match(list.body, /Cutoff on 15 January/);
    });
  });

  describe("accounts", () => {
    it("creates, searches, resets the password, disables and deletes accounts", async () => {
      const bad = await admin.post("/console/accounts", { name: "bad name!", password: "pw" });
      assert.equal(bad.status, 422);
      assert.match(bad.body, /data-testid="error-name"/);
      const created = await admin.postAndFollow("/console/accounts", {
        name: "carol",
        password: "carol password",
      });
      assert.match(created.body, /data-testid="account-jid">carol@localhost</);
      assert.match(created.body, /No live sessions\./);
      assert.match(created.body, /data-testid="account-state"><span class="badge badge-ok">enabled/);
      assert.match(created.body, /data-testid="disable-account"/);
      assert.doesNotMatch(
        created.body,
        /data-testid="enable-account"/,
        "one of Disable and Enable, as the state asks",
      );
      const search = await admin.get("/console/accounts?q=car");
      assert.match(search.body, /href="\/console\/accounts\/carol"/);
      const none = await admin.get("/console/accounts?q=zz");
      assert.match(none.body, /No account starts with “zz”/);
      // The length bound of in-band registration applies here too, as a form error.
      const long = await admin.post("/console/accounts/carol/password", { password: "p".repeat(257) });
      assert.equal(long.status, 422);
      assert.match(long.body, /data-testid="error-password"[\s\S]*?at most 256 characters/);
      const pw = await admin.postAndFollow("/console/accounts/carol/password", {
        password: "new carol password",
      });
      assert.match(pw.body, /Password of carol changed/);
      const disabled = await admin.postAndFollow("/console/accounts/carol/disable", {});
      assert.match(disabled.body, /carol disabled/);
      assert.equal((await kit.server.services.storage.accounts.get("carol"))!.disabled, true);
      assert.match(disabled.body, /data-testid="account-state"><span class="badge badge-bad">disabled/);
      assert.match(disabled.body, /data-testid="enable-account"/);
      assert.doesNotMatch(disabled.body, /data-testid="disable-account"/);
      const kick = await admin.postAndFollow("/console/accounts/carol/kick", { resource: "phone" });
      assert.match(kick.body, /flash-error/);
      const gone = await admin.postAndFollow("/console/accounts/carol/delete", {});
      assert.match(titleOf(gone), /^Accounts/);
      assert.equal(await kit.server.services.storage.accounts.exists("carol"), false);
      const missing = await admin.get("/console/accounts/carol");
      assert.equal(missing.status, 404);
    });
  });

  it("serves the live panel from the servers' live figures, and the assets", async () => {
    const now = kit.server.services.clock.now();
    const cutoff = {
      at: now,
      sessions: 2,
      accounts: 2,
      rows: [],
      spared: { exempt: { sessions: 0, accounts: 0 }, rollout: { sessions: 0, accounts: 0 } },
    };
    await writeLiveSnapshot(kit.server.services.storage, {
      nodeId: "zz-test-node",
      at: now,
      revision: 1,
      sessions: 5,
      accounts: 4,
      rows: [
        {
          clientId: "good.chat",
          version: "1.0",
          platform: "linux",
          status: "verified",
          sessions: 3,
          accounts: 2,
        },
        {
          clientId: "<img src=x onerror=alert(1)>",
          version: null,
          platform: null,
          status: "unverified",
          sessions: 2,
          accounts: 2,
        },
      ],
      supported: { accounts: 4, supportedAccounts: 2, share: 0.5 },
      cutoff: {
        ...cutoff,
        rows: [
          {
            clientId: null,
            version: null,
            status: "unknown",
            reason: "unlicensed-client",
            sessions: 2,
            accounts: 2,
          },
        ],
      },
    });
    const live = await admin.get("/console/live", { "hx-request": "true" });
    assert.equal(live.status, 200);
    assert.match(live.body, /^<section id="live-panel"[^>]*hx-trigger="every 10s"/);
    assert.match(live.body, /data-testid="sessions-now">\d+</);
    assert.match(live.body, /data-testid="cutoff-now"><strong>2<\/strong> session/);
    const json = chartData(live.body, "versions-chart");
    assert.ok(json, "chart data for the sessions by version");
    const data = JSON.parse(json) as { labels: string[]; sessions: number[] };
    assert.ok(data.labels.includes("good.chat 1.0 (verified)"));
    assert.ok(!live.body.includes("<img src=x"), "client names reported by clients are escaped");
    const dash = await admin.get("/console");
    const css = /href="(\/assets\/style\.css\?v=[0-9a-f]+)"/.exec(dash.body)?.[1];
    assert.ok(css);
    const res = await admin.get(css);
    assert.equal(res.status, 200);
    assert.match(String(res.headers["cache-control"]), /immutable/);
    for (const name of ["htmx.min.js", "chart.umd.min.js", "dashboard.js", "app.js", "keys.js"]) {
      const a = await admin.get(`/assets/${name}`);
      assert.equal(a.status, 200, name);
      assert.match(String(a.headers["content-type"]), /text\/javascript/);
    }
    assert.equal((await admin.get("/assets/nothing.js")).status, 404);
  });

  it("logs out", async () => {
    const b = await consoleAdmin(kit, "temp-admin", "temp admin pw 1");
    const out = await b.post("/console/logout", {});
    assert.equal(out.status, 303);
    assert.equal((await b.get("/console")).status, 303);
  });
});
