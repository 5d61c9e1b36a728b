import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import { NS_DATA, NS_DISCO_INFO } from "../../src/core/xml/namespaces.js";
import contactAddresses, { SERVERINFO_FORM_TYPE } from "../../src/modules/contact-addresses/index.js";
import disco from "../../src/modules/disco/index.js";
import { type Harness, startHarness } from "../kit/harness.js";

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(addresses?: Record<string, unknown>): Promise<Harness> {
  const h = await startHarness({
    modules: [disco, contactAddresses] as ModuleDefinition<unknown>[],
    ...(addresses ? { config: { modules: { "contact-addresses": addresses } } } : {}),
  });
  harnesses.push(h);
  await h.createUser("alice");
  return h;
}

/** The server's disco#info forms, as alice gets them. */
async function serverForms(h: Harness) {
  const a = await h.connect("alice");
  try {
    const reply = await a.iq(
      x("iq", { type: "get", to: "example.test" }, x("query", { xmlns: NS_DISCO_INFO })),
    );
    assert.equal(reply.attrs.type, "result");
    return reply.getChild("query", NS_DISCO_INFO)!.getChildren("x", NS_DATA);
  } finally {
    await a.disconnect();
  }
}

test("configured addresses are published as the serverinfo form, each kind a list-multi of URIs", async () => {
  const h = await start({
    abuse: ["mailto:abuse@example.test", "xmpp:abuse@example.test"],
    security: ["https://example.test/security"],
  });
  const forms = await serverForms(h);
  assert.equal(forms.length, 1);
  const form = forms[0]!;
  assert.equal(form.attrs.type, "result");
  const fields = form.getChildren("field");
  const formType = fields.find((f) => f.attrs.var === "FORM_TYPE")!;
  assert.equal(formType.attrs.type, "hidden");
  assert.equal(formType.getChildText("value"), SERVERINFO_FORM_TYPE);
  const values = (name: string) =>
    fields
      .find((f) => f.attrs.var === name)
      ?.getChildren("value")
      .map((v) => v.text());
  assert.deepEqual(values("abuse-addresses"), ["mailto:abuse@example.test", "xmpp:abuse@example.test"]);
  assert.deepEqual(values("security-addresses"), ["https://example.test/security"]);
  assert.equal(fields.find((f) => f.attrs.var === "abuse-addresses")!.attrs.type, "list-multi");
  // Kinds without addresses are left out rather than published empty.
  assert.equal(values("admin-addresses"), undefined);
  assert.equal(fields.length, 3);
});

test("without addresses no form is published", async () => {
  const h = await start();
  assert.deepEqual(await serverForms(h), []);
});

test("an address that is not a URI, or an unknown kind, is refused at start", async () => {
  await assert.rejects(start({ abuse: ["abuse@example.test"] }), /URI/);
  await assert.rejects(start({ complaints: ["mailto:x@example.test"] }));
});
