/**
 * The console on a server with a virtual host: an administrator whose account is on the
 * other host logs in with its whole address, and an account's page shows its address on its
 * own domain.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { consoleAdmin, type PagesKit, startPages } from "./pages-kit.js";

let kit: PagesKit;
before(async () => {
  kit = await startPages({ hosts: ["corp.example"] });
});
after(async () => {
  await kit?.stop();
});

test("an administrator of corp.example logs in as boss@corp.example; the bare name is the primary's", async () => {
  const b = await consoleAdmin(kit, "boss@corp.example", "corp admin password");
  const page = await b.get(`/console/accounts/${encodeURIComponent("boss@corp.example")}`);
  assert.equal(page.status, 200, page.body);
  assert.match(page.body, /data-testid="account-jid">boss@corp\.example</);

  const other = kit.browser();
  await other.get("/console/login");
  const refused = await other.post("/console/login", { username: "boss", password: "corp admin password" });
  assert.notEqual(refused.status, 303, "boss@localhost does not exist");
});
