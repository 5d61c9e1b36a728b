/** Where mail links point: the HTTP server's own URL once it listens, else the configuration. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mailContextOf } from "../../src/programme/mail-templates.js";
import { loadServerConfig } from "../../src/server/config.js";

const config = loadServerConfig({ overrides: { domain: "example.net", bind: "127.0.0.1", httpPort: 5280 } });

describe("mail context", () => {
  it("reads a URL function each time, so a port given by the system at listen time reaches the mails", () => {
    let listening = "";
    const ctx = mailContextOf(config, () => listening);
    assert.equal(ctx.publicUrl, "http://127.0.0.1:5280", "before listening: the configuration");
    listening = "http://127.0.0.1:41234/";
    assert.equal(ctx.publicUrl, "http://127.0.0.1:41234", "then the listener's own, without the slash");
    assert.equal(ctx.network, "example.net");
  });

  it("an empty URL falls back to the configuration instead of making links relative", () => {
    assert.equal(mailContextOf(config, "").publicUrl, "http://127.0.0.1:5280");
    assert.equal(
      mailContextOf(config, "https://portal.example.net//").publicUrl,
      "https://portal.example.net",
    );
  });
});
