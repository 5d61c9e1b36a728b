/**
 * What the server's own web chat (Converse.js 14, in headless Chromium) shows when the
 * licensing policy closes its session, with `http.webChat.firstParty: false` (the web
 * chat then is an unlicensed client like any other): at the cutoff the headline the
 * server sends before the stream error is listed under "Announcements"; Converse then
 * reconnects, its login is refused with the SASL failure, and it shows its login form
 * with its own text for any SASL failure (docs/licensing-protocol.md §3.1, the
 * Converse.js row).
 */
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import {
  ACTION_MS,
  chromiumSkip,
  launchChromium,
  removeScreenshots,
  screenshot,
} from "../helpers/browser.js";
import { instantIn, policySet, sleepUntil } from "../helpers/licensed-setup.js";
import { startWsServer, type WsServer } from "../helpers/ws-client.js";

const PW = "web-chat-refusal-pw";
const INFO_URL = "https://example.net/licensed-clients";

async function logIn(page: Page, baseUrl: string, user: string): Promise<void> {
  await page.goto(`${baseUrl}/chat`);
  await page.locator("#converse-login-jid").fill(user);
  await page.locator("#converse-login-password").fill(PW);
  await page.locator("#converse-login button[type=submit]").click();
  await page.getByText("I am online").waitFor({ timeout: ACTION_MS });
}

describe("the web chat at a cutoff (Chromium)", { skip: chromiumSkip }, () => {
  let web: WsServer;
  let browser: Browser;

  before(async () => {
    removeScreenshots("web-chat-refusal");
    web = await startWsServer({
      name: "web-chat-refusal",
      users: { alice: PW },
      config: {
        http: { webChat: { firstParty: false } },
        modules: { licensing: { pollIntervalMs: 250 } },
      },
    });
    await policySet(web.server, "--mode", "warn", "--info-url", INFO_URL);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await web?.server.stop();
  });

  test("the server's notice is listed under Announcements, then the login form replaces it", async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    try {
      await logIn(page, web.baseUrl, "alice");
      // The notice: listed under Announcements as the feed of the domain (a sender without "@").
      // Converse reconnects at once and its login form may replace the list within moments (on
      // a busy machine before a poll of the page could see it), so the page itself records
      // that the notice was listed.
      const headline = `[data-headline-jid="${web.server.domain}"]`;
      await page.evaluate(`window.headlineListed = false;
        new MutationObserver(() => {
          if (document.querySelector(${JSON.stringify(headline)})) window.headlineListed = true;
        }).observe(document.body, { childList: true, subtree: true, attributes: true });`);
      const cutoff = instantIn(8000);
      await policySet(web.server, "--stage", `${cutoff.iso}=enforce`);
      await sleepUntil(cutoff.at);
      await page.waitForFunction("window.headlineListed === true", null, { timeout: ACTION_MS });
      if (await page.locator(headline).first().isVisible())
        await screenshot(page, "web-chat-refusal-announcement");
      // Converse reconnects at once; the SASL failure then stops it and its login form replaces
      // everything, with its own words for any SASL failure (strophe.js passes no condition).
      const feedback = page.getByText("Your XMPP address and/or password is incorrect. Please try again.");
      await feedback.waitFor({ timeout: 30_000 });
      await page.locator("#converse-login-jid").waitFor({ timeout: ACTION_MS });
      t.diagnostic("Converse.js listed the notice, then shows its login form and its own text");
      await screenshot(page, "web-chat-refusal-after");
    } catch (err) {
      await screenshot(page, "web-chat-refusal-failure").catch(() => undefined);
      throw err;
    } finally {
      await context.close();
    }
  });
});
