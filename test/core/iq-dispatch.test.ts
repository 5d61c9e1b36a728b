/**
 * IQ dispatch to registered handlers: a handler may send its result early (before what it
 * sends next), and it is then answered once only, whatever it returns or throws afterwards.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { StanzaError } from "../../src/core/errors.js";
import { defineModule, type ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import { type Harness, startHarness } from "../kit/harness.js";

const NS = "urn:test:early-reply";
let h: Harness;

const early = defineModule({
  name: "early-reply",
  description: "answers before it is done",
  setup(ctx) {
    ctx.handleIq({ target: "bare", type: "set", xmlns: NS }, (req) => {
      const mode = req.payload.attrs.mode;
      req.reply(x("query", { xmlns: NS, answered: "early" }));
      // What comes after the result: a notice to the same client.
      req.origin?.send(x("message", { type: "headline" }, x("body", null, "after the result")));
      if (mode === "throw") throw new StanzaError("internal-server-error", "failed later");
      return x("query", { xmlns: NS, answered: "late" });
    });
  },
}) as ModuleDefinition<unknown>;

before(async () => {
  h = await startHarness({ modules: [early] });
  await h.createUser("alice");
});
after(() => h.stop());

for (const mode of ["return", "throw"]) {
  test(`an early result is the only answer and comes first (handler that ends with ${mode})`, async () => {
    const s = await h.connect("alice", `r-${mode}`);
    const iq = x("iq", { type: "set", id: `early-${mode}` }, x("query", { xmlns: NS, mode }));
    await s.sendStanza(iq);
    await new Promise((r) => setTimeout(r, 20));
    const got = s.pending();
    assert.deepEqual(
      got.map((el) => `${el.name}:${el.attrs.type}`),
      ["iq:result", "message:headline"],
    );
    assert.equal(got[0]!.getChild("query", NS)?.attrs.answered, "early");
    await s.disconnect();
  });
}
