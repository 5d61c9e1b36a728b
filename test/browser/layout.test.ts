/**
 * The pages' layout in real headless Chromium against the real server process, with real
 * content (a licensed client and an unlicensed one online, an approved publisher with
 * several keys, a policy preview): at 1280 px no table is wider than its card and no page
 * scrolls sideways; on a 390 px phone the console's header takes at most a sixth of the
 * first screen, every table keeps its action buttons on the screen, and nothing scrolls sideways.
 * Also: the landing page at /, the active Applications tab, applications by name, the terms
 * and integration guide links, counts in the right number. Screenshots of the pages go to
 * test-artifacts/screenshots/.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import {
  byLabel,
  chromiumSkip,
  launchChromium,
  openPage,
  PageProblems,
  reloadUntil,
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
} from "../helpers/licensed-peer.js";
import { cli, settle } from "../helpers/licensed-setup.js";

const PHONE = { width: 390, height: 844 };
const ADMIN = "layoutadmin";
const ADMIN_PASSWORD = "layout-secret-2026";
const EMAIL = "dev@longname-software.example";
const WAITING_EMAIL = "releases@another-publisher.example";
const PORTAL_PASSWORD = "portal-secret-2026";
const XMPP_PASSWORD = "xmpp-secret-2026";
const CLIENT_ID = "com.longname-software.messenger.desktop";
const APP_NAME = "Longname Messenger";

const CONSOLE_PAGES = [
  "/console",
  "/console/applications",
  "/console/applications?tab=approved",
  "/console/apps",
  `/console/apps/${CLIENT_ID}`,
  "/console/licences",
  "/console/policy",
  "/console/notices",
  "/console/accounts",
  "/console/audit",
  "/console/mail",
];

/** In the page: tables wider than their card, and how far the page scrolls sideways. */
const OVERFLOW = `(() => {
  const wide = [...document.querySelectorAll(".table-wrap")]
    .filter((w) => w.getClientRects().length > 0 && w.scrollWidth - w.clientWidth > 1)
    .map((w) => {
      const t = w.querySelector("table");
      const name = t?.dataset.testid || t?.querySelector("caption")?.textContent?.trim() || "a table";
      return name + " (" + w.scrollWidth + " px in " + w.clientWidth + " px)";
    });
  return { wide, page: document.documentElement.scrollWidth - window.innerWidth };
})()`;

/** In the page: every button of every table that is not fully on the screen's width. */
const CUT_BUTTONS = `(() => [...document.querySelectorAll(".table-wrap button")]
  .filter((b) => {
    const r = b.getBoundingClientRect();
    return r.width === 0 || r.left < 0 || r.right > window.innerWidth;
  })
  .map((b) => b.textContent.trim() + " at " + Math.round(b.getBoundingClientRect().left)))()`;

/** A sign-up and an application through the portal's forms, as a browser posts them. */
async function applyAsPublisher(web: WebServer): Promise<string> {
  const base = web.baseUrl;
  let cookie = "";
  const keep = (res: Response) => {
    const fresh = res.headers.getSetCookie().map((c) => c.split(";")[0]!);
    if (fresh.length > 0) cookie = fresh.join("; ");
  };
  const form = async (url: string) => {
    const res = await fetch(`${base}${url}`, { headers: { accept: "text/html", cookie } });
    keep(res);
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await res.text())?.[1];
    assert.ok(csrf, `no CSRF token on ${url}`);
    return csrf;
  };
  const post = async (url: string, fields: Record<string, string | string[]>) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) body.append(k, one);
    const res = await fetch(`${base}${url}`, {
      method: "POST",
      redirect: "manual",
      headers: { accept: "text/html", cookie, "content-type": "application/x-www-form-urlencoded" },
      body: body.toString(),
    });
    keep(res);
    return res;
  };
  let csrf = await form("/portal/signup");
  // Another publisher signs up and has not confirmed yet: the Mail page lists the link.
  assert.equal(
    (
      await post("/portal/signup", {
        _csrf: csrf,
        email: WAITING_EMAIL,
        password: PORTAL_PASSWORD,
        confirm: PORTAL_PASSWORD,
      })
    ).status,
    200,
  );
  csrf = await form("/portal/signup");
  assert.equal(
    (
      await post("/portal/signup", {
        _csrf: csrf,
        email: EMAIL,
        password: PORTAL_PASSWORD,
        confirm: PORTAL_PASSWORD,
      })
    ).status,
    200,
  );
  const link = linkTo(await mailTo(web.smtp, EMAIL, /Confirm your email address/), base, "/portal/verify");
  assert.equal((await fetch(link, { redirect: "manual" })).status, 303);
  csrf = await form("/portal/login");
  assert.equal(
    (await post("/portal/login", { _csrf: csrf, email: EMAIL, password: PORTAL_PASSWORD })).status,
    303,
  );
  csrf = await form("/portal/apply");
  const applied = await post("/portal/apply", {
    _csrf: csrf,
    organisation: "Longname Software Development Cooperative Ltd",
    contactName: "Ada Longname",
    contactEmail: EMAIL,
    appName: APP_NAME,
    description: "A desktop messenger for teams.",
    platforms: ["linux", "windows", "macos"],
    website: "https://longname-software.example",
    expectedUsers: "25000",
    scope: "client",
    termsAccepted: "yes",
  });
  assert.equal(applied.status, 303, await applied.text());
  return applied.headers.get("location")!.split("/").pop()!;
}

describe("page layout on a laptop and a phone (Chromium, real server)", { skip: chromiumSkip }, () => {
  let web: WebServer;
  let browser: Browser;
  let adminContext: BrowserContext;
  let publisherContext: BrowserContext;
  let adm: Page;
  let pub: Page;
  const problems = new PageProblems();
  const peers: (LicensedPeer | PlainPeer)[] = [];

  before(async () => {
    web = await startWebServer({
      name: "browser-layout",
      users: { carol: XMPP_PASSWORD, dave: XMPP_PASSWORD },
      admins: { [ADMIN]: ADMIN_PASSWORD },
      config: { modules: { licensing: { pollIntervalMs: 250, statsIntervalMs: 500 } } },
    });
    const applicationId = await applyAsPublisher(web);
    // A second application, still open, for the queue.
    await cli(web.server, ["application", "approve", applicationId, "--client-id", CLIENT_ID]);
    const keyFile = path.join(web.server.dataDir, "layout.key");
    await cli(web.server, ["keygen", "--out", keyFile]);
    for (const keyId of ["release-2026-signing-key", "nightly-builds-signing-key", "k3"]) {
      const other = path.join(web.server.dataDir, `${keyId}.key`);
      await cli(web.server, ["keygen", "--out", other]);
      await cli(web.server, [
        "app",
        "key",
        "add",
        CLIENT_ID,
        "--key-id",
        keyId,
        "--public-key-file",
        `${other}.pub`,
      ]);
    }
    await cli(web.server, [
      "app",
      "key",
      "add",
      CLIENT_ID,
      "--key-id",
      "desktop",
      "--public-key-file",
      `${keyFile}.pub`,
    ]);
    await settle();
    peers.push(
      await connectLicensed(
        web.server,
        { user: "carol", password: XMPP_PASSWORD, resource: "desktop" },
        {
          clientId: CLIENT_ID,
          keyId: "desktop",
          privateKeyPem: readFileSync(keyFile, "utf8"),
          version: "12.4.17",
        },
      ),
    );
    peers.push(
      await connectPlain(web.server, { user: "dave", password: XMPP_PASSWORD, resource: "old-client" }),
    );

    browser = await launchChromium();
    ({ context: adminContext, page: adm } = await openPage(browser, web.baseUrl, "admin", problems));
    ({ context: publisherContext, page: pub } = await openPage(browser, web.baseUrl, "publisher", problems));
    await adm.goto("/console/login");
    await byLabel(adm, "Account").fill(ADMIN);
    await byLabel(adm, "Password").fill(ADMIN_PASSWORD);
    await adm.getByTestId("login-submit").click();
    await adm.waitForURL(/\/console\/?$/);
    await pub.goto("/portal/login");
    await byLabel(pub, "Email address").fill(EMAIL);
    await byLabel(pub, "Password").fill(PORTAL_PASSWORD);
    await pub.getByTestId("login-submit").click();
    await pub.waitForURL(/\/portal\/?$/);
  });

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    await adminContext?.close().catch(() => undefined);
    await publisherContext?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await web?.stop();
  });

  test("the landing page links to the portal, the console, the API document and the status", async () => {
    await pub.goto("/");
    for (const id of ["portal", "console", "api", "status"]) await pub.getByTestId(`landing-${id}`).waitFor();
    await screenshot(pub, "landing");
    await pub.getByTestId("landing-portal").click();
    await pub.waitForURL(/\/portal\/?$/);
  });

  test("at 1280 px no table is wider than its card and no page scrolls sideways", async () => {
    await reloadUntil(
      adm,
      async () =>
        (await textOf(adm.getByTestId("sessions-by-version"), "the sessions table", 1000)).includes(
          CLIENT_ID,
        ),
      "the licensed client on the dashboard",
    );
    const found: string[] = [];
    const check = async (page: Page, url: string) => {
      const { wide, page: sideways } = (await page.evaluate(OVERFLOW)) as { wide: string[]; page: number };
      for (const w of wide) found.push(`${url}: ${w}`);
      if (sideways > 0) found.push(`${url}: the page scrolls ${sideways} px sideways`);
      const text = await page.evaluate("document.body.innerText");
      if (/\w\(s\)/.test(String(text))) found.push(`${url}: a count reads "(s)"`);
    };
    for (const url of CONSOLE_PAGES) {
      await adm.goto(url);
      await check(adm, url);
    }
    // The policy preview, with the unlicensed session it would cut off.
    await adm.goto("/console/policy");
    await byLabel(adm, "From (UTC)").fill(utcInputValue(Date.now() + 86_400_000));
    await byLabel(adm, "Mode").selectOption("enforce");
    await adm.getByTestId("preview-schedule").click();
    await adm.getByTestId("policy-preview").waitFor();
    await check(adm, "/console/policy (preview)");
    await adm.getByTestId("policy-preview").scrollIntoViewIfNeeded();
    await screenshot(adm, "console-policy-preview-1280");
    for (const url of [
      "/portal",
      "/portal/applications",
      `/portal/apps/${CLIENT_ID}`,
      "/portal/notices",
      "/portal/guide",
      "/portal/guide/sdk",
    ]) {
      await pub.goto(url);
      await check(pub, url);
    }
    await adm.goto("/console/mail");
    const waiting = await textOf(adm.getByTestId("confirmations-table"), "the pending confirmations");
    assert.match(
      waiting,
      new RegExp(`${WAITING_EMAIL.replace(/\./g, "\\.")}[\\s\\S]*/portal/verify\\?token=`),
    );
    await screenshot(adm, "console-mail");
    await adm.goto("/console");
    await screenshot(adm, "console-dashboard-1280");
    assert.deepEqual(found, []);
  });

  test("the Applications tabs mark the active one, and list applications by app name", async () => {
    await adm.goto("/console/applications?tab=approved");
    const styles =
      (await adm.evaluate(`[...document.querySelectorAll('nav[aria-label="Application states"] a')]
      .map((l) => ({ current: l.getAttribute("aria-current"), background: getComputedStyle(l).backgroundColor, text: l.textContent.trim() }))`)) as {
        current: string | null;
        background: string;
        text: string;
      }[];
    const active = styles.filter((s) => s.current === "page");
    assert.equal(active.length, 1, JSON.stringify(styles));
    const others = styles.filter((s) => s.current !== "page");
    assert.ok(
      others.every((o) => o.background !== active[0]!.background),
      `the active tab looks like the others: ${JSON.stringify(styles)}`,
    );
    const link = adm.getByTestId("applications-table").getByTestId("application-link").first();
    assert.equal(await textOf(link, "the application's link"), APP_NAME);
  });

  test("the terms checkbox and the app page link to documents that exist", async () => {
    await pub.goto("/portal/apply");
    const terms = pub.getByTestId("terms-link");
    const href = await terms.getAttribute("href");
    assert.ok(href, "the terms link has a target");
    const [termsPage] = await Promise.all([pub.context().waitForEvent("page"), terms.click()]);
    await termsPage.waitForLoadState();
    assert.match(
      await textOf(termsPage.locator("h1"), "the terms' heading"),
      /Terms of the licensing programme/,
    );
    await termsPage.close();

    await pub.goto(`/portal/apps/${CLIENT_ID}`);
    await pub.getByTestId("integration-guide").click();
    await pub.waitForURL(/\/portal\/guide#7-integrating-a-client$/);
    const heading = pub.locator('[id="7-integrating-a-client"]');
    assert.match(await textOf(heading, "the integration section"), /Integrating a client/);
    assert.ok(await heading.isVisible(), "the page opens at the integration section");
  });

  test("on a 390 px phone the header leaves the first screen to the page, and tables keep their buttons on screen", async () => {
    await adm.setViewportSize(PHONE);
    await pub.setViewportSize(PHONE);
    try {
      const found: string[] = [];
      for (const url of CONSOLE_PAGES) {
        await adm.goto(url);
        const header = (await adm.evaluate(
          "document.querySelector('.site-header').getBoundingClientRect().height",
        )) as number;
        if (header > PHONE.height / 6) found.push(`${url}: the header is ${Math.round(header)} px high`);
        const { wide, page: sideways } = (await adm.evaluate(OVERFLOW)) as { wide: string[]; page: number };
        for (const w of wide) found.push(`${url}: ${w}`);
        if (sideways > 0) found.push(`${url}: the page scrolls ${sideways} px sideways`);
        for (const b of (await adm.evaluate(CUT_BUTTONS)) as string[])
          found.push(`${url}: button ${b} cut off`);
      }
      await adm.goto("/console/applications");
      await screenshot(adm, "console-phone");
      // The navigation still reaches every page: it scrolls sideways within its line.
      await adm.getByTestId("nav-mail").scrollIntoViewIfNeeded();
      await adm.getByTestId("nav-mail").click();
      await adm.waitForURL(/\/console\/mail$/);

      for (const url of ["/portal", `/portal/apps/${CLIENT_ID}`, "/portal/apply", "/portal/notices"]) {
        await pub.goto(url);
        const { wide, page: sideways } = (await pub.evaluate(OVERFLOW)) as { wide: string[]; page: number };
        for (const w of wide) found.push(`${url}: ${w}`);
        if (sideways > 0) found.push(`${url}: the page scrolls ${sideways} px sideways`);
        for (const b of (await pub.evaluate(CUT_BUTTONS)) as string[])
          found.push(`${url}: button ${b} cut off`);
      }
      assert.deepEqual(found, []);
      // The signing keys: every Revoke button can be seen and pressed.
      await pub.goto(`/portal/apps/${CLIENT_ID}`);
      const revoke = pub.getByRole("button", { name: /^Revoke/ });
      assert.ok((await revoke.count()) >= 4, "a Revoke button per key");
      const last = revoke.last();
      await last.scrollIntoViewIfNeeded();
      const box = await last.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `Revoke at ${JSON.stringify(box)}`);
      await screenshot(pub, "portal-app-keys-phone");
    } finally {
      await adm.setViewportSize(VIEWPORT);
      await pub.setViewportSize(VIEWPORT);
    }
  });

  test("no page had a script error, a console error or a server error", () => {
    assert.deepEqual(problems.problems, []);
  });
});
