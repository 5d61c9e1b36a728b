/**
 * The web chat (/chat, Converse.js) in headless Chromium against the real server:
 * log in, exchange messages with a slixmpp user on TCP, under an `open` policy and
 * then under `enforce` (the web chat is admitted as the first-party client while an
 * unlicensed client is refused). The page must load nothing the CSP refuses. Also,
 * without a browser: the grant is only good with the page's Origin, from the address
 * it was issued to, for one account.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { licenceRefusal } from "../../sdk/refusal.js";
import { startOnline } from "../../sdk/start-online.js";
import {
  ACTION_MS,
  chromiumSkip,
  launchChromium,
  removeScreenshots,
  screenshot,
} from "../helpers/browser.js";
import { cli, settle } from "../helpers/licensed-setup.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { is } from "../helpers/stanza.js";
import {
  connectWs,
  RawWs,
  startWsServer,
  stopAfterRefusal,
  type WsServer,
  wsClient,
} from "../helpers/ws-client.js";

const PW = { alice: "alice-webchat-pw", bob: "bob-webchat-pw", carol: "carol-webchat-pw" };
const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";

/** Page errors and console errors, except Converse's reports of features this server does not offer (PEP). */
function watch(page: Page, problems: string[]): void {
  page.on("pageerror", (err) => problems.push(`uncaught ${err.name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    if (/^<iq [^>]*type="error"/.test(text) || /^Failed to load resource: .* 4\d\d/.test(text)) return;
    problems.push(`console error: ${text.slice(0, 300)}`);
  });
}

async function logIn(page: Page, baseUrl: string, user: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/chat`);
  await page.locator("#converse-login-jid").fill(user);
  await page.locator("#converse-login-password").fill(password);
  await page.locator("#converse-login button[type=submit]").click();
  await page.getByText("I am online").waitFor({ timeout: ACTION_MS });
}

/** Opens a chat with `jid` from the contacts menu's "Start a new chat" and waits for its message box. */
async function openChat(page: Page, jid: string): Promise<void> {
  await page.locator("converse-dropdown.dropdown--contacts button").first().click();
  await page.locator("a.new-chat").click();
  const field = page.locator("converse-new-chat-modal input[name='jid'], form input[name='jid']").last();
  await field.fill(jid);
  await field.press("Enter");
  await page.locator("textarea.chat-textarea").first().waitFor();
}

async function send(page: Page, text: string): Promise<void> {
  const box = page.locator("textarea.chat-textarea").first();
  await box.fill(text);
  await box.press("Enter");
}

describe("web chat in Chromium", { skip: chromiumSkip || slixSkip }, () => {
  let web: WsServer;
  let browser: Browser;
  let bob: SlixPeer;

  before(async () => {
    removeScreenshots("web-chat");
    web = await startWsServer({
      name: "web-chat",
      users: PW,
      config: { modules: { licensing: { pollIntervalMs: 250 } } },
    });
    browser = await launchChromium();
    bob = await connectSlix(web.server, { user: "bob", password: PW.bob, resource: "desk" });
    await bob.command("presence");
  });
  after(async () => {
    await bob?.close();
    await browser?.close();
    await web?.server.stop();
  });

  for (const mode of ["open", "enforce"] as const) {
    test(`log in at /chat and chat with a slixmpp user (policy ${mode})`, async () => {
      if (mode === "enforce") {
        // bob's slixmpp is an unlicensed client: his account is exempt, alice's is not.
        await cli(web.server, ["policy", "set", "--mode", "enforce", "--exempt", "bob"]);
        await settle();
      }
      const context: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const problems: string[] = [];
      watch(page, problems);
      try {
        await logIn(page, web.baseUrl, "alice", PW.alice);
        await screenshot(page, `web-chat-${mode}-logged-in`);
        await openChat(page, "bob@localhost");
        await send(page, `hello from the web chat (${mode})`);
        const got = await bob.next(
          is.message({ body: `hello from the web chat (${mode})` }),
          "the web chat's message",
        );
        assert.match(got.attrs.from ?? "", /^alice@localhost\//);
        await bob.command("message", { to: got.attrs.from, body: `hello browser (${mode})` });
        await page.getByText(`hello browser (${mode})`).waitFor({ timeout: ACTION_MS });
        await screenshot(page, `web-chat-${mode}-conversation`);
        assert.deepEqual(problems, [], "no page errors, no CSP violations");
      } catch (err) {
        await screenshot(page, `web-chat-${mode}-failure`).catch(() => undefined);
        throw err;
      } finally {
        await context.close();
      }
    });
  }

  test("under enforce, the live figures count the web chat as its own client", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await logIn(page, web.baseUrl, "carol", PW.carol);
      let live = "";
      for (let i = 0; i < 40 && !live.includes("switchboard:web-chat"); i++) {
        await new Promise((r) => setTimeout(r, 250));
        live = JSON.stringify(await cli(web.server, ["stats", "clients"]));
      }
      assert.match(live, /switchboard:web-chat/);
    } finally {
      await context.close();
    }
  });

  test("under enforce, a client without the web chat's grant is refused over the same endpoint", async () => {
    const xmpp = wsClient(web.wsUrl, { user: "carol", password: PW.carol });
    xmpp.reconnect.stop();
    xmpp.on("error", () => undefined);
    // The refusal as received (SASL2 failure, then the stream error): @xmpp/client may reject
    // start() with its own write-after-close TypeError once the server has closed the stream.
    let received: string | undefined;
    xmpp.on("element", (element: unknown) => {
      received ??= licenceRefusal({ element })?.condition;
    });
    const outcome = await startOnline(xmpp).then(
      () => "logged in",
      (err: unknown) => licenceRefusal(err)?.condition ?? received ?? String(err),
    );
    await stopAfterRefusal(xmpp);
    assert.equal(outcome, "unlicensed-client");
  });
});

describe("the web chat's grant", () => {
  let web: WsServer;
  before(async () => {
    web = await startWsServer({
      name: "web-chat-grant",
      users: PW,
      config: { modules: { licensing: { pollIntervalMs: 250 } } },
    });
    await cli(web.server, ["policy", "set", "--mode", "enforce"]);
    await settle();
  });
  after(async () => {
    await web?.server.stop();
  });

  /** Loads /chat like a browser and returns the grant cookie it set. */
  async function grantCookie(): Promise<string> {
    const res = await fetch(`${web.baseUrl}/chat`);
    assert.equal(res.status, 200);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'(;|$)/, "no eval, no inline scripts");
    const cookie = res.headers.get("set-cookie") ?? "";
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Strict/i);
    assert.match(cookie, /Path=\/xmpp-websocket/);
    return cookie.split(";")[0]!;
  }

  async function login(user: string, headers: Record<string, string>): Promise<string> {
    const raw = await RawWs.open(web.wsUrl, { headers });
    await raw.openStream();
    const payload = Buffer.from(`\0${user}\0${PW[user as keyof typeof PW]}`).toString("base64");
    raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${payload}</auth>`);
    const answer = await raw.waitFor(/^<(success|stream:error|failure)/, `${user}'s login`);
    // A refused login without a proof: a SASL failure clients show, then the stream error with
    // the licensing condition (docs/licensing-protocol.md §3.1).
    const refusal = answer.text.startsWith("<failure")
      ? await raw.waitFor(/^<stream:error/, `the stream error after ${user}'s SASL failure`)
      : answer;
    raw.send(`<close xmlns='${FRAMING}'/>`);
    raw.terminate();
    if (answer.text.startsWith("<success")) return "success";
    return (
      /<([a-z-]+) xmlns=['"]urn:switchboard:client-licence:0['"]/.exec(refusal.text)?.[1] ?? refusal.text
    );
  }

  test("with the page's Origin, the grant admits its first account and no other", async () => {
    const cookie = await grantCookie();
    const origin = web.baseUrl;
    assert.equal(await login("alice", { cookie, origin }), "success");
    assert.equal(await login("alice", { cookie, origin }), "success", "the same account again (a reconnect)");
    assert.equal(
      await login("bob", { cookie, origin }),
      "unlicensed-client",
      "another account with alice's grant",
    );
  });

  test("another Origin, no cookie or a made-up grant is refused", async () => {
    const cookie = await grantCookie();
    assert.equal(await login("bob", { cookie, origin: "https://elsewhere.example" }), "unlicensed-client");
    assert.equal(await login("bob", { origin: web.baseUrl }), "unlicensed-client");
    assert.equal(
      await login("bob", { cookie: "sb_webchat=made-up", origin: web.baseUrl }),
      "unlicensed-client",
    );
  });

  test("plain @xmpp/client over WebSocket still logs in when the account is exempt", async () => {
    await cli(web.server, ["policy", "set", "--exempt", "bob"]);
    await settle();
    const peer = await connectWs(web.wsUrl, { user: "bob", password: PW.bob });
    await peer.close();
  });
});
