/**
 * The licensing programme in a real headless Chromium against the real server
 * process, as one ordered story: a publisher signs up and confirms the address
 * from the mailed link, applies; an admin approves the application in the
 * console; the publisher generates a key pair in the browser (WebCrypto), keeps
 * the downloaded private key and registers the public key; the SDK client
 * connects with that key and shows up on the dashboard and on the app's page; the
 * admin schedules a cutoff a few seconds ahead in `warn` mode after previewing it,
 * and sends a notice; the publisher reads and acknowledges it and the console
 * shows the acknowledgement; the cutoff instant passes and unlicensed clients are
 * refused while the licensed one stays.
 *
 * Each step is a test; a failed step skips the ones after it (they depend on it)
 * and leaves screenshots of both browsers in test-artifacts/screenshots/. The main
 * pages are saved there on every run.
 */
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import {
  byLabel,
  chromiumSkip,
  DOWNLOADS,
  flash,
  launchChromium,
  openPage,
  PageProblems,
  pageCondition,
  reloadUntil,
  removeScreenshots,
  screenshot,
  textOf,
  utcInputValue,
  VIEWPORT,
} from "../helpers/browser.js";
import { linkTo, mailTo, startWebServer, type WebServer } from "../helpers/browser-server.js";
import {
  connectLicensed,
  connectPlain,
  type LicensedPeer,
  type PlainPeer,
  plainRefusal,
  slixOutcome,
} from "../helpers/licensed-peer.js";
import { instantIn, settle, sleepUntil } from "../helpers/licensed-setup.js";
import { slixSkip } from "../helpers/slix-client.js";

const EMAIL = "dev@fernchat.example";
const PORTAL_PASSWORD = "portal-secret-2026";
const ADMIN = "opsadmin";
const ADMIN_PASSWORD = "console-secret-2026";
const XMPP_PASSWORD = "xmpp-secret-2026";
const ORGANISATION = "Fern Software Ltd";
const APP_NAME = "Fern Chat";
const CLIENT_ID = "com.fernchat.desktop";
const KEY_ID = "web1";
const VERSION = "2.1.0";
const NOTICE_SUBJECT = "Unlicensed clients are refused from the cutoff";
/**
 * How far ahead the cutoff is scheduled: enough for the notice to be sent, read and
 * acknowledged before it (the scenario's order) on a busy machine.
 */
const CUTOFF_AHEAD_MS = 25_000;

/** Screenshots of the pages when a step fails start with this (removed at the next run). */
const FAILURE_SHOTS = "failed-programme-";
/** How long a check repeated after each reload waits for its element (absent in an empty state). */
const CHECK_MS = 1000;
/** A phone's viewport (CSS pixels). */
const PHONE = { width: 390, height: 844 };

const xmppLogin = (user: string, resource: string) => ({ user, password: XMPP_PASSWORD, resource });

describe("licensing programme in the browser (Chromium, real server)", { skip: chromiumSkip }, () => {
  let web: WebServer;
  let browser: Browser;
  let publisherContext: BrowserContext;
  let adminContext: BrowserContext;
  /** The publisher's browser tab. */
  let pub: Page;
  /** The admin's browser tab. */
  let adm: Page;
  const problems = new PageProblems();
  /** Every request body the publisher's browser sent (to show the private key never left it). */
  const publisherPosts: string[] = [];

  // What the story carries from one step to the next.
  let applicationUrl = "";
  let privateKeyPem = "";
  let carol: LicensedPeer | undefined;
  let dave: PlainPeer | undefined;
  let cutoff: { iso: string; at: number } | undefined;

  /** The first step that failed: later steps depend on it and are skipped. */
  let failedStep: string | undefined;
  const step = (name: string, fn: () => Promise<void>) =>
    test(name, async (t) => {
      if (failedStep) {
        t.skip(`the step "${failedStep}" failed`);
        return;
      }
      try {
        await fn();
      } catch (err) {
        failedStep = name;
        const slug = name.replace(/[^a-z0-9]+/gi, "-").slice(0, 40);
        await screenshot(pub, `${FAILURE_SHOTS}${slug}-publisher`).catch(() => undefined);
        await screenshot(adm, `${FAILURE_SHOTS}${slug}-admin`).catch(() => undefined);
        throw err;
      }
    });

  before(async () => {
    removeScreenshots(FAILURE_SHOTS);
    web = await startWebServer({
      name: "browser-licensing-programme",
      users: { carol: XMPP_PASSWORD, dave: XMPP_PASSWORD, erin: XMPP_PASSWORD },
      admins: { [ADMIN]: ADMIN_PASSWORD },
      config: { modules: { licensing: { pollIntervalMs: 250, statsIntervalMs: 500 } } },
    });
    browser = await launchChromium();
    ({ context: publisherContext, page: pub } = await openPage(browser, web.baseUrl, "publisher", problems));
    ({ context: adminContext, page: adm } = await openPage(browser, web.baseUrl, "admin", problems));
    pub.on("request", (r) => publisherPosts.push(r.postData() ?? ""));
  });

  after(async () => {
    await carol?.close().catch(() => undefined);
    await dave?.close().catch(() => undefined);
    await publisherContext?.close().catch(() => undefined);
    await adminContext?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await web?.stop();
  });

  step("a publisher signs up and confirms the address from the mailed link", async () => {
    await pub.goto("/portal/signup");
    await screenshot(pub, "portal-signup");
    await byLabel(pub, "Email address").fill(EMAIL);
    await byLabel(pub, "Password").fill(PORTAL_PASSWORD);
    await byLabel(pub, "Password again").fill(PORTAL_PASSWORD);
    await pub.getByTestId("signup-submit").click();
    assert.match(await textOf(pub.getByTestId("check-mail"), "the 'check your mail' message"), /link/);

    const mail = await mailTo(web.smtp, EMAIL, /Confirm your email address/);
    const link = linkTo(mail, web.baseUrl, "/portal/verify");
    await pub.goto(link.href);
    await pub.waitForURL(/\/portal\/login/);
    await flash(pub, "success", /confirmed/);
    assert.equal(await byLabel(pub, "Email address").inputValue(), EMAIL, "the address is filled in");
    await byLabel(pub, "Password").fill(PORTAL_PASSWORD);
    await pub.getByTestId("login-submit").click();
    await pub.waitForURL(/\/portal\/?$/);
    assert.equal(await textOf(pub.getByTestId("signed-in-as"), "the signed-in account"), EMAIL);
  });

  step("the publisher applies for a licence (a missing field is reported first)", async () => {
    await pub.getByTestId("nav-apply").click();
    await pub.waitForURL(/\/portal\/apply$/);
    await byLabel(pub, "Organisation").fill(ORGANISATION);
    await byLabel(pub, "Contact name").fill("Ada Fern");
    assert.equal(await byLabel(pub, "Contact email").inputValue(), EMAIL, "contact email prefilled");
    await byLabel(pub, "App name").fill(APP_NAME);
    await byLabel(pub, "Description").fill(
      "A desktop chat client for small teams: one-to-one chats, presence, file sharing.",
    );
    await pub.getByRole("checkbox", { name: "linux", exact: true }).check();
    await pub.getByRole("checkbox", { name: "windows", exact: true }).check();
    await byLabel(pub, "Website (optional)").fill("https://fernchat.example");
    await byLabel(pub, "Expected number of users").fill("5000");
    await pub.getByRole("radio", { name: /^client: / }).check();

    await pub.getByRole("heading", { name: "Apply for a licence" }).scrollIntoViewIfNeeded();
    await screenshot(pub, "portal-application-form");

    // Without accepting the terms: the form comes back (htmx) with the error, the values kept,
    // and the error summary takes the focus so that it is read out.
    await pub.getByTestId("apply-submit").click();
    assert.match(await textOf(pub.getByTestId("error-termsAccepted"), "the error about the terms"), /terms/i);
    assert.equal(await byLabel(pub, "App name").inputValue(), APP_NAME, "values kept after the error");
    await pageCondition(
      pub,
      "document.activeElement?.dataset?.testid === 'form-errors'",
      "the error summary has the focus after the form came back",
      "document.activeElement?.outerHTML.slice(0, 120)",
      5000,
    );

    await pub.getByRole("checkbox", { name: /I accept the licensing programme's terms/ }).check();
    await pub.getByTestId("apply-submit").click();
    await pub.waitForURL(/\/portal\/applications\/[^/]+$/);
    applicationUrl = pub.url();
    assert.match(
      await textOf(pub.getByTestId("application-status"), "the application's status"),
      /submitted/,
    );
    await flash(pub, "success", /submitted/);
    await mailTo(web.smtp, EMAIL, new RegExp(`Licence application received: ${APP_NAME}`));
  });

  step("an admin logs in to the console and approves the application", async () => {
    await adm.goto("/console");
    await adm.waitForURL(/\/console\/login/);
    await byLabel(adm, "Account").fill(ADMIN);
    await byLabel(adm, "Password").fill(ADMIN_PASSWORD);
    await adm.getByTestId("login-submit").click();
    await adm.waitForURL(/\/console\/?$/);
    assert.equal(await textOf(adm.getByTestId("signed-in-as"), "the signed-in admin"), ADMIN);

    await adm.getByTestId("nav-applications").click();
    const row = adm.getByTestId("applications-table").locator("tr", { hasText: APP_NAME });
    await row.getByTestId("application-link").click();
    await adm.getByTestId("review-submit").click();
    await adm.getByText("under-review").first().waitFor();
    await byLabel(adm, "Client id").fill(CLIENT_ID);
    await adm.getByTestId("approve-submit").click();
    await flash(adm, "success", new RegExp(`Approved: app ${CLIENT_ID.replace(/\./g, "\\.")}`));
    assert.equal(await textOf(adm.getByTestId("approved-client-id"), "the approved client id"), CLIENT_ID);
  });

  step("the publisher is mailed the approval and opens the app", async () => {
    const mail = await mailTo(web.smtp, EMAIL, new RegExp(`Licence application approved: ${APP_NAME}`));
    assert.match(mail.text, new RegExp(CLIENT_ID.replace(/\./g, "\\.")), "the mail gives the client id");
    const link = linkTo(mail, web.baseUrl, "/portal/applications/");
    assert.equal(link.href, applicationUrl, "the mail links to the application");
    await pub.goto(link.href);
    assert.match(await textOf(pub.getByTestId("application-status"), "the application's status"), /approved/);
    await pub.getByTestId("open-app").click();
    await pub.waitForURL(new RegExp(`/portal/apps/${CLIENT_ID.replace(/\./g, "\\.")}$`));
    assert.equal(await textOf(pub.getByTestId("client-id"), "the client id"), CLIENT_ID);
    assert.match(await textOf(pub.getByTestId("licence-table"), "the licence table"), /active/);
  });

  step("the publisher generates a key pair in the browser and registers the public key", async () => {
    await byLabel(pub, "Key id").fill(KEY_ID);
    const [download] = await Promise.all([
      pub.waitForEvent("download"),
      pub.getByTestId("generate-key").click(),
    ]);
    assert.equal(download.suggestedFilename(), `${CLIENT_ID}-${KEY_ID}.pem`);
    mkdirSync(DOWNLOADS, { recursive: true });
    const file = path.join(DOWNLOADS, download.suggestedFilename());
    await download.saveAs(file);
    privateKeyPem = readFileSync(file, "utf8");
    assert.match(privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const privateKey = createPrivateKey(privateKeyPem);
    assert.equal(privateKey.asymmetricKeyType, "ed25519");
    const expectedPublic = Buffer.from(
      createPublicKey(privateKey).export({ format: "jwk" }).x as string,
      "base64url",
    ).toString("base64");
    assert.equal(
      await byLabel(pub, "Public key").inputValue(),
      expectedPublic,
      "the form holds the public key of the downloaded private key (base64 of its 32 raw bytes)",
    );
    assert.match(await textOf(pub.getByTestId("keygen-status"), "the key generation status"), /generated/);

    await pub.getByTestId("register-key").click();
    await flash(pub, "success", new RegExp(`Key ${KEY_ID} registered`));
    assert.equal(await textOf(pub.getByTestId(`public-key-${KEY_ID}`), "the registered key"), expectedPublic);
    await screenshot(pub, "portal-app-keys");

    // The private key never left the browser: no request carried it.
    const secret = privateKeyPem.replace(/-----[A-Z ]+-----|\s/g, "");
    const leaked = publisherPosts.filter((body) => {
      const decoded = [...new URLSearchParams(body).values()].join("\n");
      return /PRIVATE KEY/.test(body + decoded) || body.includes(secret) || decoded.includes(secret);
    });
    assert.deepEqual(leaked, [], "a request carried the private key");
  });

  step("the SDK client connects with that key and shows up on the dashboard", async () => {
    // Licensing changes reach the XMPP side within a second (the registry is polled).
    await settle();
    carol = await connectLicensed(web.server, xmppLogin("carol", "desktop"), {
      clientId: CLIENT_ID,
      keyId: KEY_ID,
      privateKeyPem,
      version: VERSION,
    });
    assert.equal(carol.proofs.length, 1, "the client proved its licence once");

    await adm.getByTestId("nav-dashboard").click();
    const row = await reloadUntil(
      adm,
      async () => {
        const text = await textOf(adm.getByTestId("sessions-by-version"), "the sessions table", CHECK_MS);
        return text.includes(CLIENT_ID) ? text : undefined;
      },
      `${CLIENT_ID} in the dashboard's sessions by app and version`,
    );
    assert.match(
      row,
      new RegExp(`${VERSION}[\\s\\S]*verified`),
      "the session is shown with its version, verified",
    );
    assert.ok(
      Number(await textOf(adm.getByTestId("sessions-now"), "the number of sessions now")) >= 1,
      "sessions now counts the client",
    );
    await adm.locator("#versions-chart").waitFor({ state: "visible" });
    assert.equal(
      await adm.evaluate("Boolean(window.Chart && window.Chart.getChart('versions-chart'))"),
      true,
      "Chart.js drew the sessions-by-version chart",
    );
    // The live panel refreshes every 10 s by swapping itself with the chart Chart.js styled;
    // the swap must not trip the CSP (checked with every console error at the end).
    await adm.evaluate(`new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the live panel did not refresh in 15 s")), 15000);
      document.body.addEventListener("htmx:afterSettle", () => { clearTimeout(timer); resolve(); });
    })`);
    await adm.locator("#versions-chart").waitFor({ state: "visible" });
    await screenshot(adm, "console-dashboard");

    // The publisher sees the session among the app's live usage.
    await reloadUntil(
      pub,
      async () => (await textOf(pub.getByTestId("usage-sessions"), "the app's sessions", CHECK_MS)) === "1",
      "1 session in the app's live usage",
    );
  });

  step("the admin previews a cutoff a few seconds ahead in warn mode, then saves it", async () => {
    // An unlicensed client is connected: the preview must count it.
    dave = await connectPlain(web.server, xmppLogin("dave", "old-client"));

    await adm.getByTestId("nav-policy").click();
    await adm.waitForURL(/\/console\/policy$/);
    await byLabel(adm, "Base mode (before the first stage)").selectOption("warn");
    cutoff = instantIn(CUTOFF_AHEAD_MS);
    await byLabel(adm, "From (UTC)").fill(utcInputValue(cutoff.at));
    await byLabel(adm, "Mode").selectOption("enforce");
    await adm.getByTestId("preview-schedule").click();
    const preview = adm.getByTestId("policy-preview");
    await preview.waitFor({ state: "visible" });
    assert.match(
      await textOf(adm.getByTestId("preview-live-summary"), "the preview right after saving"),
      /^0 sessions/,
      "warn mode cuts nothing off",
    );
    assert.match(
      await textOf(adm.getByTestId("preview-live-enforced-summary"), "the preview under enforcement"),
      /^1 session of 1 account/,
      "enforcement would cut off the unlicensed client only",
    );
    assert.equal(adm.url().endsWith("/console/policy"), true, "the preview saved nothing (no navigation)");
    await preview.scrollIntoViewIfNeeded();
    await screenshot(adm, "console-policy-preview");

    await adm.getByTestId("save-schedule").click();
    await flash(adm, "success", /Policy saved/);
    assert.equal(await textOf(adm.getByTestId("policy-effective"), "the mode in force"), "warn");
    await adm.getByTestId("policy-cutoff").waitFor();
    assert.ok(Date.now() < cutoff.at - 5000, "the policy was saved too close to the cutoff for this test");
    // In warn mode the unlicensed session goes on.
    await dave.sync();
  });

  step("the admin sends a notice; it is mailed and its delivery tracked", async () => {
    await adm.getByTestId("nav-notices").click();
    await adm.getByTestId("compose-notice").click();
    await byLabel(adm, "Subject").fill(NOTICE_SUBJECT);
    await byLabel(adm, "Text").fill(
      `From ${cutoff!.iso} this network refuses clients that do not prove a licence. ` +
        "Please make sure every release of your app signs in with its licence key.",
    );
    await adm.getByRole("radio", { name: "All publishers" }).check();
    await adm.getByTestId("show-recipients").click();
    assert.match(await textOf(adm.getByTestId("audience-table"), "the recipients"), new RegExp(ORGANISATION));
    await adm.getByTestId("send-notice").click();
    await adm.waitForURL(/\/console\/notices\/(?!new$)[^/]+$/);
    await flash(adm, "success", /1 publisher/);

    const mail = await mailTo(web.smtp, EMAIL, new RegExp(NOTICE_SUBJECT));
    assert.match(mail.text, /licence key/);
    await reloadUntil(
      adm,
      async () =>
        /1 delivered/.test(await textOf(adm.getByTestId("notice-summary"), "the notice's summary", CHECK_MS)),
      "the notice delivered to the publisher",
    );
  });

  step("the publisher follows the mailed link, reads and acknowledges the notice", async () => {
    const mail = await mailTo(web.smtp, EMAIL, new RegExp(NOTICE_SUBJECT));
    const link = linkTo(mail, web.baseUrl, "/portal/notices/");
    // On a phone: the page fits the screen's width.
    await pub.setViewportSize(PHONE);
    try {
      await pub.goto(link.href);
      assert.equal(await textOf(pub.getByTestId("notice-subject"), "the notice's subject"), NOTICE_SUBJECT);
      assert.match(await textOf(pub.getByTestId("notice-body"), "the notice's text"), /licence key/);
      const overflow = await pub.evaluate("document.documentElement.scrollWidth - window.innerWidth");
      assert.ok(
        Number(overflow) <= 0,
        `the notice page is ${overflow} px wider than a ${PHONE.width} px phone`,
      );
      await screenshot(pub, "portal-notice-phone");
      await pub.getByTestId("acknowledge").click();
      await pub.getByTestId("acknowledged").waitFor();
      await flash(pub, "success", /acknowledgement/);
    } finally {
      await pub.setViewportSize(VIEWPORT);
    }
  });

  step("the console shows the notice read and acknowledged", async () => {
    const summary = await reloadUntil(
      adm,
      async () => {
        const text = await textOf(adm.getByTestId("notice-summary"), "the notice's summary", CHECK_MS);
        return /1 of 1 acknowledged/.test(text) ? text : undefined;
      },
      "the acknowledgement in the console",
    );
    assert.match(summary, /1 read/);
    const table = adm.getByTestId("recipients-table");
    const ack = await textOf(table.locator("[data-testid^='ack-']"), "the acknowledgement cell");
    assert.doesNotMatch(ack, /not acknowledged/);
    assert.match(await textOf(table, "the recipients"), new RegExp(ORGANISATION));
    await adm.getByText("all acknowledged").waitFor();
    await screenshot(adm, "console-notice-tracking");
    assert.ok(Date.now() < cutoff!.at, "the notice was acknowledged after the cutoff: raise CUTOFF_AHEAD_MS");
  });

  step("the cutoff instant passes: unlicensed clients are refused, the licensed one stays", async () => {
    await sleepUntil(cutoff!.at);
    await Promise.race([dave!.ended, new Promise((r) => setTimeout(r, 5000))]);
    assert.ok(dave!.endedAt > 0, "the unlicensed session was not closed at the cutoff");
    assert.equal(dave!.refusal?.condition, "unlicensed-client");

    const refusal = await plainRefusal(web.server, xmppLogin("erin", "plain"));
    assert.equal(refusal.condition, "unlicensed-client", "a new login without a proof is refused");
    assert.equal(refusal.streamCondition, "policy-violation");
    if (!slixSkip) {
      const slix = await slixOutcome(web.server, xmppLogin("erin", "slix"));
      assert.equal(slix.sessionStarted, false, "slixmpp without a proof got a session");
      assert.ok(slix.streamErrors.includes("policy-violation"), `slixmpp: ${slix.streamErrors}`);
    }
    await carol!.sync();

    await adm.getByTestId("nav-dashboard").click();
    assert.equal(await textOf(adm.getByTestId("policy-mode"), "the dashboard's policy"), "enforce");
  });

  step("no page had a script error, a console error or a server error", async () => {
    assert.deepEqual(problems.problems, []);
  });
});
