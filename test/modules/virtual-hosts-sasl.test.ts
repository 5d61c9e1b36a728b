/**
 * Logins on a virtual host over the real stream engine: the stream's 'to' chooses whose
 * account a name is. alice@example.test and alice@corp.test are two accounts with their own
 * passwords, a FAST token (XEP-0484) issued to one never opens the other, and in-band
 * registration (XEP-0077) creates the account on the stream's domain.
 */
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import fast from "../../src/modules/fast/index.js";
import register from "../../src/modules/register/index.js";
import { freePorts } from "../helpers/server.js";
import { type Element, parseXml } from "../helpers/stanza.js";
import { type Harness, startHarness } from "../kit/harness.js";
import { SocketClient } from "../licensing/b-socket.js";

const NS_SASL2 = "urn:xmpp:sasl:2";
const NS_FAST = "urn:xmpp:fast:0";
const CORP = "corp.test";

/** A TLS stream to `domain`; one SASL2 <authenticate/>; its <success/> or <failure/>. */
async function authenticate(
  port: number,
  domain: string,
  mechanism: string,
  initial: Buffer,
  inner: string,
): Promise<Element> {
  const c = await SocketClient.connect(port);
  try {
    await c.open(domain);
    await c.startTls(domain);
    c.write(
      `<authenticate xmlns='${NS_SASL2}' mechanism='${mechanism}'><initial-response>${initial.toString("base64")}</initial-response>${inner}</authenticate>`,
    );
    const m = await c.waitFor(
      /<success xmlns="urn:xmpp:sasl:2"[\s\S]*?<\/success>(?=<stream:features)|<failure xmlns="urn:xmpp:sasl:2"[\s\S]*?<\/failure>/,
      "the SASL2 outcome",
    );
    return parseXml(m[0]);
  } finally {
    c.destroy();
  }
}

const agent = (id: string) => `<user-agent id='${id}'><software>hosts test</software></user-agent>`;

function plain(port: number, domain: string, user: string, password: string, inner = ""): Promise<Element> {
  return authenticate(port, domain, "PLAIN", Buffer.from(`\0${user}\0${password}`), inner);
}

function tokenLogin(port: number, domain: string, user: string, token: string, agentId: string) {
  const mac = createHmac("sha256", Buffer.from(token, "utf8")).update("Initiator").digest();
  return authenticate(
    port,
    domain,
    "HT-SHA-256-NONE",
    Buffer.concat([Buffer.from(`${user}\0`), mac]),
    `${agent(agentId)}<fast xmlns='${NS_FAST}'/>`,
  );
}

describe("logins on a virtual host", () => {
  let h: Harness;
  let port: number;
  before(async () => {
    [port] = await freePorts(1);
    h = await startHarness({
      modules: [fast, register] as ModuleDefinition<unknown>[],
      config: { c2sPort: port, hosts: [CORP], allowRegistration: true },
    });
    await h.createUser("alice", "alice-primary-pw");
    await h.createUser(`alice@${CORP}`, "alice-corp-pw");
  });
  after(async () => {
    await h?.stop();
  });

  test("the stream's domain chooses the account a name logs in to", async () => {
    const corp = await plain(port, CORP, "alice", "alice-corp-pw");
    assert.equal(corp.name, "success", corp.toString());
    assert.equal(corp.getChildText("authorization-identifier"), `alice@${CORP}`);
    const primary = await plain(port, h.domain, "alice", "alice-primary-pw");
    assert.equal(primary.getChildText("authorization-identifier"), `alice@${h.domain}`);
    assert.equal(
      (await plain(port, CORP, "alice", "alice-primary-pw")).name,
      "failure",
      "the primary's password",
    );
    assert.equal((await plain(port, h.domain, "alice", "alice-corp-pw")).name, "failure", "corp's password");
  });

  test("a FAST token of alice@example.test does not open alice@corp.test", async () => {
    const agentId = randomUUID();
    const issued = await plain(
      port,
      h.domain,
      "alice",
      "alice-primary-pw",
      `${agent(agentId)}<request-token xmlns='${NS_FAST}' mechanism='HT-SHA-256-NONE'/>`,
    );
    const token = issued.getChild("token", NS_FAST)?.attrs.token;
    assert.ok(token, `a token: ${issued}`);
    const onCorp = await tokenLogin(port, CORP, "alice", token, agentId);
    assert.equal(onCorp.name, "failure", `the token on ${CORP}: ${onCorp}`);
    const onPrimary = await tokenLogin(port, h.domain, "alice", token, agentId);
    assert.equal(onPrimary.name, "success", `the token on ${h.domain}: ${onPrimary}`);
    assert.equal(onPrimary.getChildText("authorization-identifier"), `alice@${h.domain}`);
  });

  test("in-band registration creates the account on the stream's domain", async () => {
    const c = await SocketClient.connect(port);
    try {
      await c.open(CORP);
      await c.startTls(CORP);
      c.write(
        "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>erin</username><password>erin-corp-pw</password></query></iq>",
      );
      const m = await c.waitFor(
        /<iq[^>]*id="reg1"[^>]*>|<iq[^>]*id='reg1'[^>]*>/,
        "the registration's answer",
      );
      assert.match(m[0], /type=["']result["']/, m[0]);
    } finally {
      c.destroy();
    }
    const accounts = h.server.services.storage.accounts;
    assert.equal(
      await accounts.exists(`erin@${CORP}`),
      true,
      "erin@corp.test is stored under its account key",
    );
    assert.equal(await accounts.exists("erin"), false, "no erin on the primary domain");
    const login = await plain(port, CORP, "erin", "erin-corp-pw");
    assert.equal(login.getChildText("authorization-identifier"), `erin@${CORP}`);
  });
});
