/** Licence applications: the form, review, approval through the licensing registry, rejection; mails checked. */
import assert from "node:assert/strict";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { LicensingRegistry } from "../../src/licensing/index.js";
import { deriveClientId, parseApplicationForm } from "../../src/programme/applications.js";
import { isRefusal, ProgrammeError } from "../../src/programme/errors.js";
import type { Application, PortalAccountView } from "../../src/programme/model.js";
import { ValidationError } from "../../src/programme/validation.js";
import { ADMIN, applicationForm, type Kit, PUBLIC_URL, removeTempDirs, startKit } from "./kit.js";
import { linkIn } from "./smtp-sink.js";

after(removeTempDirs);

const DAY = 86_400_000;

describe("application form", () => {
  it("accepts a complete form and normalises it", () => {
    const form = parseApplicationForm(applicationForm({ platforms: ["Android", "linux", "android"] }));
    assert.deepEqual(form.platforms, ["android", "linux"]);
    assert.equal(form.expectedUsers, 25000);
    assert.equal(form.termsAccepted, true);
    assert.equal(form.contactEmail, "licensing@example.com");
    assert.equal(
      form.description,
      "A chat client for desktop and phones.\nEnd-to-end encryption by default.",
    );
  });

  it("names every field in error", () => {
    assert.throws(
      () =>
        parseApplicationForm({
          organisation: " ",
          contactName: "A",
          contactEmail: "nope",
          appName: "X",
          description: "d",
          platforms: "",
          website: "ftp://example.com",
          expectedUsers: "many",
          scope: "server",
        }),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.deepEqual(Object.keys(err.fields).sort(), [
          "contactEmail",
          "expectedUsers",
          "organisation",
          "platforms",
          "scope",
          "termsAccepted",
          "website",
        ]);
        assert.equal(err.refusal, "invalid");
        return true;
      },
    );
  });

  it("a gateway application names its domain; platforms are optional for it", () => {
    const form = parseApplicationForm(
      applicationForm({ scope: "gateway", domain: " IRC.gw.Example.org ", platforms: "" }),
    );
    assert.equal(form.scope, "gateway");
    assert.equal(form.domain, "irc.gw.example.org");
    assert.deepEqual(form.platforms, []);
    for (const domain of [undefined, "", "not a domain", "x@y.example"]) {
      assert.throws(
        () => parseApplicationForm(applicationForm({ scope: "gateway", domain })),
        (err: unknown) => err instanceof ValidationError && Object.keys(err.fields).join() === "domain",
        String(domain),
      );
    }
    // A client application ignores a domain and still needs its platforms; peering is not applied for here.
    assert.equal(parseApplicationForm(applicationForm({ domain: "x.example" })).domain, undefined);
    assert.throws(() => parseApplicationForm(applicationForm({ platforms: "" })), ValidationError);
    assert.throws(
      () => parseApplicationForm(applicationForm({ scope: "peering", domain: "x.example" })),
      ValidationError,
    );
  });

  it("derives client ids from the app name and website, unique", () => {
    const taken = new Set(["com.example.example-chat"]);
    assert.equal(
      deriveClientId("Example Chat", "https://www.example.com/x", (c) => taken.has(c)),
      "com.example.example-chat-2",
    );
    assert.equal(
      deriveClientId("Élan Messenger!", undefined, () => false),
      "elan-messenger",
    );
    assert.equal(
      deriveClientId("中文", undefined, () => false),
      "app",
    );
    assert.equal(
      deriveClientId("X", undefined, () => false),
      "app-x",
    );
  });
});

describe("licence applications", () => {
  let kit: Kit;
  let account: PortalAccountView;
  let registry: LicensingRegistry;

  beforeEach(async () => {
    kit = await startKit();
    registry = new LicensingRegistry(kit.storage, kit.clock);
    const { accounts } = kit.programme;
    await accounts.signUp({ email: "ada@example.com", password: "a long password" });
    await kit.smtp.waitFor(1);
    const token = linkIn(kit.smtp.mails[0]!, "/portal/verify").searchParams.get("token")!;
    account = await accounts.verifyEmail(token);
  });
  afterEach(async () => {
    await kit.close();
  });

  async function submit(overrides: Record<string, unknown> = {}): Promise<Application> {
    const before = kit.smtp.mails.length;
    const a = await kit.programme.applications.submit(account.id, applicationForm(overrides));
    await kit.smtp.waitFor(before + 1);
    return a;
  }

  it("an unconfirmed account cannot apply", async () => {
    const { account: other } = await kit.programme.accounts.signUp({
      email: "new@example.com",
      password: "a long password",
    });
    await assert.rejects(
      kit.programme.applications.submit(other!.id, applicationForm()),
      /confirm your email/,
    );
  });

  it("submits, is acknowledged by mail, and approval creates publisher, app and licence and mails the publisher", async () => {
    const application = await submit();
    assert.equal(application.status, "submitted");
    const received = kit.smtp.mails.at(-1)!;
    assert.deepEqual(received.to, ["ada@example.com"]);
    assert.match(received.subject, /application received: Example Chat/);
    assert.equal(linkIn(received, `/portal/applications/${application.id}`).origin, PUBLIC_URL);

    const reviewed = await kit.programme.applications.startReview(application.id, ADMIN);
    assert.equal(reviewed.status, "under-review");

    kit.clock.advance(DAY);
    const validUntil = kit.clock.now() + 365 * DAY;
    const { application: approved, licence } = await kit.programme.applications.approve(
      application.id,
      ADMIN,
      {
        validUntil,
        maxSessions: 500,
        termsRef: "https://chat.example.net/terms/v3",
      },
    );
    assert.equal(approved.status, "approved");
    assert.equal(approved.clientId, "com.example.example-chat");
    assert.deepEqual(
      approved.history.map((h) => h.status),
      ["submitted", "under-review", "approved"],
    );

    const snapshot = await registry.snapshot();
    const publisher = snapshot.publishers.get(approved.publisherId!);
    assert.equal(publisher?.organisation, "Example Software Ltd");
    assert.equal(publisher?.contactEmail, "licensing@example.com");
    const app = snapshot.apps.get("com.example.example-chat");
    assert.deepEqual(app && { name: app.name, publisherId: app.publisherId, platforms: app.platforms }, {
      name: "Example Chat",
      publisherId: publisher!.id,
      platforms: ["android", "linux"],
    });
    const [stored] = snapshot.licences.get("com.example.example-chat") ?? [];
    assert.equal(stored?.id, licence.id);
    assert.deepEqual(
      {
        scope: stored!.scope,
        validUntil: stored!.validUntil,
        maxSessions: stored!.maxSessions,
        termsRef: stored!.termsRef,
      },
      { scope: "client", validUntil, maxSessions: 500, termsRef: "https://chat.example.net/terms/v3" },
    );
    // Audited in the admin's name.
    const audit = await registry.audit({ kindPrefix: "" });
    assert.deepEqual(
      audit.map((e) => [e.kind, e.data.actor]),
      [
        ["application.review", ADMIN],
        ["publisher.add", ADMIN],
        ["app.register", ADMIN],
        ["licence.grant", ADMIN],
        ["application.approve", ADMIN],
      ],
    );
    assert.equal((await kit.programme.accounts.get(account.id))?.publisherId, publisher!.id);

    await kit.smtp.waitFor(3);
    const mail = kit.smtp.mails[2]!;
    assert.deepEqual(mail.to, ["ada@example.com"]);
    assert.match(mail.subject, /approved: Example Chat/);
    assert.match(mail.text, /Client id: +com\.example\.example-chat/);
    assert.match(mail.text, new RegExp(`Licence: +${licence.id} \\(scope client\\)`));
    assert.match(mail.text, /Sessions: +at most 500 at a time/);
    assert.match(mail.text, /terms\/v3/);

    await assert.rejects(kit.programme.applications.approve(application.id, ADMIN), /already approved/);
    await assert.rejects(
      kit.programme.applications.reject(application.id, ADMIN, "late"),
      /already approved/,
    );
  });

  it("approving a gateway application grants a gateway licence for its domain to the publisher, and registers no app", async () => {
    const application = await submit({
      scope: "gateway",
      appName: "Example IRC bridge",
      domain: "irc.gw.example.org",
      platforms: "",
    });
    assert.match(kit.smtp.mails.at(-1)!.text, /Domain: +irc\.gw\.example\.org/);
    await assert.rejects(
      kit.programme.applications.approve(application.id, ADMIN, { clientId: "com.example.irc" }),
      /no client id/,
    );
    await assert.rejects(
      kit.programme.applications.approve(application.id, ADMIN, { maxSessions: 3 }),
      /session limits/,
    );
    const { application: approved, licence } = await kit.programme.applications.approve(
      application.id,
      ADMIN,
      {
        termsRef: "gateway terms 2",
      },
    );
    assert.equal(approved.status, "approved");
    assert.equal(approved.clientId, undefined);
    assert.equal(approved.licenceId, licence.id);
    assert.ok(licence.scope === "gateway" && licence.domain === "irc.gw.example.org");
    assert.equal(licence.publisherId, approved.publisherId);
    const snapshot = await registry.snapshot();
    assert.equal(snapshot.apps.size, 0);
    assert.deepEqual(
      snapshot.domainLicences.gateway.get("irc.gw.example.org")?.map((l) => l.id),
      [licence.id],
    );
    const audit = await registry.audit({ kind: "application.approve" });
    assert.equal((audit[0]!.data.after as { domain?: string }).domain, "irc.gw.example.org");
    await kit.smtp.waitFor(3);
    const mail = kit.smtp.mails[2]!;
    assert.match(mail.subject, /approved: Example IRC bridge/);
    assert.match(mail.text, new RegExp(`Licence: +${licence.id} \\(scope gateway\\)`));
    assert.match(mail.text, /component's\s+secret\s+for\s+irc\.gw\.example\.org/);
  });

  it("a second application of the same publisher reuses its publisher; a chosen client id must be free", async () => {
    const first = await submit();
    await kit.programme.applications.approve(first.id, ADMIN, { clientId: "com.example.chat" });
    const second = await submit({ appName: "Example Chat Lite", organisation: "Example Software Ltd" });
    await assert.rejects(
      kit.programme.applications.approve(second.id, ADMIN, { clientId: "com.example.chat" }),
      (err: unknown) => isRefusal(err, "conflict"),
    );
    // The failed attempt released the application: it can be approved now.
    const { application } = await kit.programme.applications.approve(second.id, ADMIN);
    assert.equal(application.clientId, "com.example.example-chat-lite");
    const snapshot = await registry.snapshot();
    assert.equal(snapshot.publishers.size, 1);
    assert.equal(snapshot.apps.get("com.example.example-chat-lite")?.publisherId, application.publisherId);
  });

  it("an approval refused for a client id in use creates and links nothing", async () => {
    const operator = await registry.addPublisher(ADMIN, {
      organisation: "Example Ltd",
      contactEmail: "ada@example.com",
    });
    await registry.registerApp(ADMIN, {
      clientId: "com.example.chat",
      name: "Example Chat",
      publisherId: operator.id,
      platforms: ["linux"],
    });
    const application = await submit();
    // Named publisher: the account is not linked to it.
    await assert.rejects(
      kit.programme.applications.approve(application.id, ADMIN, {
        publisherId: operator.id,
        clientId: "com.example.chat",
      }),
      (err: unknown) => isRefusal(err, "conflict"),
    );
    assert.equal((await kit.programme.accounts.get(account.id))?.publisherId, undefined);
    // No publisher named: none is created.
    await assert.rejects(
      kit.programme.applications.approve(application.id, ADMIN, { clientId: "com.example.chat" }),
      (err: unknown) => isRefusal(err, "conflict"),
    );
    assert.deepEqual([...(await registry.snapshot()).publishers.keys()], [operator.id]);
    const unchanged = await kit.programme.applications.get(application.id);
    assert.equal(unchanged?.status, "submitted");
    assert.equal(unchanged?.publisherId, undefined);
    // Another client id: approved, under the named publisher, and the account linked.
    const { application: approved } = await kit.programme.applications.approve(application.id, ADMIN, {
      publisherId: operator.id,
      clientId: "com.example.chat2",
    });
    assert.equal(approved.publisherId, operator.id);
    assert.equal((await kit.programme.accounts.get(account.id))?.publisherId, operator.id);
  });

  it("rejects with a reason that the publisher reads in the mail", async () => {
    const application = await submit();
    await assert.rejects(kit.programme.applications.reject(application.id, ADMIN, "  "), ValidationError);
    const rejected = await kit.programme.applications.reject(
      application.id,
      ADMIN,
      "The website does not describe the app.\nPlease add a privacy policy.",
    );
    assert.equal(rejected.status, "rejected");
    assert.equal(
      rejected.rejectionReason,
      "The website does not describe the app.\nPlease add a privacy policy.",
    );
    await kit.smtp.waitFor(3);
    const mail = kit.smtp.mails[2]!;
    assert.deepEqual(mail.to, ["ada@example.com"]);
    assert.match(mail.subject, /declined: Example Chat/);
    assert.match(mail.text, /does not describe the app\.\n {2}Please add a privacy policy\./);
    assert.equal((await registry.snapshot()).apps.size, 0, "nothing was created");
    await assert.rejects(kit.programme.applications.approve(application.id, ADMIN), /already rejected/);
  });

  it("runs through the admin commands", async () => {
    const application = await submit();
    const listed = await kit.run("application list", { status: "submitted" });
    assert.deepEqual(
      (listed.data as { applications: Application[] }).applications.map((a) => a.id),
      [application.id],
    );
    assert.match(listed.message, /Example Chat \(Example Software Ltd\)/);
    const shown = await kit.run("application show", { id: application.id });
    assert.match(shown.message, /expected users +25000/);
    await assert.rejects(
      kit.run("application show", { id: "apl_nothing" }),
      (e: unknown) => e instanceof ProgrammeError && e.refusal === "not-found",
    );

    const approved = await kit.run("application approve", {
      id: application.id,
      clientId: "com.example.chat",
      validUntil: "2028-01-04T09:00:00Z",
      maxSessions: "100",
      terms: "standard terms v3",
    });
    assert.match(approved.message, /app com\.example\.chat/);
    const licence = (await registry.snapshot()).licences.get("com.example.chat")![0]!;
    assert.equal(licence.validUntil, Date.parse("2028-01-04T09:00:00Z"));
    assert.equal(licence.maxSessions, 100);
    assert.equal((await kit.run("application list", { status: "submitted" })).message, "(no applications)");

    const other = await submit({ appName: "Other" });
    await kit.run("application reject", { id: other.id, reason: "duplicate of an approved app" });
    await kit.smtp.waitFor(5);
    assert.match(kit.smtp.mails[4]!.text, /duplicate of an approved app/);

    const users = await kit.run("portal-user list", {});
    assert.match(users.message, /ada@example\.com {2}confirmed {2}publisher pub_/);
  });
});
