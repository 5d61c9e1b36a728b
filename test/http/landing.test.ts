/**
 * `GET /`, where the start banner points: a page for browsers linking to what the parts of
 * the listener offer (each link answering), JSON for API clients, and a plugin's own links
 * (the web chat's) listed with the others.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startWebServer, type WebServer } from "./api-kit.js";

describe("landing page", () => {
  let web: WebServer;
  before(async () => {
    web = await startWebServer();
  });
  after(async () => {
    await web?.stop();
  });

  test("a browser gets a page linking to the portal, the console, the API document, the status and the web chat", async () => {
    const page = await web.call("GET", "/", {
      headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
    });
    assert.equal(page.status, 200, page.text);
    assert.match(String(page.headers.get("content-type")), /^text\/html/);
    assert.match(page.text, /<title>localhost · Switchboard<\/title>/);
    const hrefs = [...page.text.matchAll(/<a href="([^"]+)" data-testid="landing-/g)].map((m) => m[1]!);
    assert.deepEqual([...hrefs].sort(), [
      "/api/v1/health",
      "/api/v1/openapi.json",
      "/chat",
      "/console",
      "/portal",
    ]);
    for (const href of hrefs) {
      const target = await web.call("GET", href, { headers: { accept: "text/html" } });
      assert.ok([200, 303].includes(target.status), `${href} answered ${target.status}`);
    }
    assert.match(page.text, /name@localhost/, "how to connect a client");
  });

  test("an API client gets JSON", async () => {
    for (const accept of ["application/json", "*/*", undefined]) {
      const res = await web.call("GET", "/", accept ? { headers: { accept } } : {});
      assert.equal(res.status, 200);
      assert.match(String(res.headers.get("content-type")), /^application\/json/, `Accept ${accept}`);
      assert.equal(res.json.domain, "localhost");
      assert.match(res.json.links.portal, /^http:\/\/127\.0\.0\.1:\d+\/portal$/);
      assert.match(res.json.links.status, /\/api\/v1\/health$/);
      assert.match(res.json.links.chat, /\/chat$/);
    }
  });
});
