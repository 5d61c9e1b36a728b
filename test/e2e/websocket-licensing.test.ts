/**
 * Licence proofs over WebSocket with the SDK (sdk/ on @xmpp/client): under an
 * `enforce` policy a licensed build logs in over ws:// (no TLS on the connection,
 * so the proof binds to none) and over wss:// served by the listener itself (the
 * proof binds to the TLS channel: tls-exporter, computed on the client's side of
 * the same connection), while a plain @xmpp/client is refused before its password
 * is used.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { licensedClient } from "../../sdk/licensed-client.js";
import { licenceRefusal } from "../../sdk/refusal.js";
import { startOnline } from "../../sdk/start-online.js";
import { type AppCredentials, cli, registerApp, settle } from "../helpers/licensed-setup.js";
import type { Element } from "../helpers/stanza.js";
import { startWsServer, stopAfterRefusal, type WsServer, wsClient } from "../helpers/ws-client.js";

const PW = "ws-licensing-pw";

async function licensedLogin(web: WsServer, app: AppCredentials, user: string) {
  const xmpp = licensedClient({
    service: web.wsUrl,
    domain: "localhost",
    username: user,
    password: PW,
    resource: "ws",
    timeout: 10_000,
    licence: {
      clientId: app.clientId,
      keyId: app.keyId,
      version: "1.0",
      platform: "web",
      privateKeyPem: app.privateKeyPem,
      tickets: false,
    },
  });
  xmpp.reconnect.stop();
  const sent: Element[] = [];
  xmpp.on("send", (el: Element) => sent.push(el));
  xmpp.on("error", () => undefined);
  const jid = await startOnline(xmpp);
  return { xmpp, jid: jid.toString(), sent, offer: xmpp.licence.offer };
}

async function unlicensedRefusal(web: WsServer, user: string): Promise<string> {
  const xmpp = wsClient(web.wsUrl, { user, password: PW });
  xmpp.reconnect.stop();
  xmpp.on("error", () => undefined);
  try {
    await startOnline(xmpp);
  } catch (err) {
    await stopAfterRefusal(xmpp);
    const refusal = licenceRefusal(err);
    if (refusal) return refusal.condition;
    throw new Error(`expected a licence refusal, got ${(err as Error).message}`);
  }
  await xmpp.stop().catch(() => undefined);
  throw new Error("the unlicensed login succeeded under enforce");
}

for (const https of [false, true]) {
  describe(`licence proofs over ${https ? "wss://" : "ws://"}`, () => {
    let web: WsServer;
    let app: AppCredentials;

    before(async () => {
      web = await startWsServer({
        name: `websocket-licensing-${https ? "wss" : "ws"}`,
        users: { alice: PW, bob: PW },
        https,
        config: { modules: { licensing: { pollIntervalMs: 250, statsIntervalMs: 200 } } },
      });
      app = await registerApp(web.server, "com.example.webapp", { platforms: ["web"] });
      await cli(web.server, ["policy", "set", "--mode", "enforce"]);
      await settle();
    });
    after(async () => {
      await web?.server.stop();
    });

    test(`a licensed build logs in, its proof bound to ${https ? "the TLS channel (tls-exporter)" : "no channel (none)"}`, async () => {
      const { xmpp, jid, sent, offer } = await licensedLogin(web, app, "alice");
      try {
        assert.equal(jid, "alice@localhost/ws");
        assert.equal(offer?.mode, "enforce");
        assert.equal(offer?.bindingType, https ? "tls-exporter" : "none");
        const proofs = sent.flatMap((el) => (el.name === "proof" ? [el] : el.getChildren("proof")));
        assert.equal(proofs.length, 1, "one proof sent");
        // The live figures (written every statsIntervalMs) show the session as the licensed app, verified.
        let live = "";
        for (let i = 0; i < 40 && !live.includes("com.example.webapp"); i++) {
          await new Promise((r) => setTimeout(r, 250));
          live = JSON.stringify(await cli(web.server, ["stats", "clients"]));
        }
        assert.match(live, /com\.example\.webapp/, `stats clients: ${live}`);
      } finally {
        await xmpp.stop();
      }
    });

    test("an unlicensed client over the same endpoint is refused (unlicensed-client)", async () => {
      assert.equal(await unlicensedRefusal(web, "bob"), "unlicensed-client");
    });
  });
}
