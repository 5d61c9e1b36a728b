/**
 * The publisher guide pages as a publisher outside the project meets them: the integration
 * guide (docs/licensing-protocol.md), the SDK's page (sdk/README.md) and the app page that
 * points at them. Every link on them answers 200 and every fragment names an element of its
 * page; the material the guide names (the SDK, the Python example) is served; the runnable
 * markers stay out of sight and the step-by-step commands stay code.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { applicationForm, type Browser, type PagesKit, portalUser, startPages } from "./pages-kit.js";

/** The href of every anchor, and the ids of the page. */
function linksOf(body: string): string[] {
  return [...body.matchAll(/<a\b[^>]*\bhref="([^"]*)"/g)].map((m) => m[1]!.replace(/&amp;/g, "&"));
}
const idsOf = (body: string) => new Set([...body.matchAll(/\bid="([^"]*)"/g)].map((m) => m[1]!));

/** The <main> of a page: the guide's own content, without the site's navigation. */
function mainOf(body: string): string {
  const m = /<main[\s\S]*<\/main>/.exec(body);
  assert.ok(m, "no <main>");
  return m[0];
}

describe("publisher guide pages", () => {
  let kit: PagesKit;
  let publisher: Browser;
  before(async () => {
    kit = await startPages();
    publisher = await portalUser(kit, "dev@guide.example");
    const sent = await publisher.post("/portal/apply", applicationForm({ appName: "Guide Chat" }));
    assert.equal(sent.status, 303, sent.body);
    await kit.run("application approve", { id: sent.location!.split("/").pop()!, clientId: "guide.chat" });
  });
  after(async () => {
    await kit.stop();
  });

  /** Follows every link in a page's <main>; fragments must name an element of their page. */
  async function checkLinks(b: Browser, url: string): Promise<string[]> {
    const page = await b.get(url);
    assert.equal(page.status, 200, url);
    const links = linksOf(mainOf(page.body));
    const bodies = new Map<string, string>([[url, page.body]]);
    for (const href of links) {
      if (/^https?:\/\//.test(href)) continue; // another site's address, written in the document
      const [pathPart, fragment] = href.split("#") as [string, string | undefined];
      const target = pathPart === "" ? url : pathPart;
      if (!bodies.has(target)) {
        const res = await b.get(target);
        assert.equal(res.status, 200, `${url}: the link ${href} answers ${res.status}`);
        bodies.set(target, res.body);
      }
      if (fragment !== undefined) {
        assert.ok(idsOf(bodies.get(target)!).has(fragment), `${url}: the link ${href} names no element`);
      }
    }
    return links;
  }

  it("every link on the integration guide answers 200, visitor or publisher", async () => {
    for (const b of [kit.browser(), publisher]) {
      const links = await checkLinks(b, "/portal/guide");
      // What the guide tells a client developer to use is linked, and served.
      assert.ok(links.includes("/portal/guide/sdk"), "the guide links the SDK");
      assert.ok(
        links.includes("/portal/guide/files/docs/examples/licence_proof.py"),
        "and the Python example",
      );
      assert.ok(links.includes("/portal/guide/files/sdk/examples/licensed-chat.ts"), "and the SDK's example");
    }
  });

  it("every link on the SDK's page answers 200: each of its files, and the guide", async () => {
    const links = await checkLinks(kit.browser(), "/portal/guide/sdk");
    for (const file of ["index.ts", "licensed-client.ts", "proof.ts", "binding.ts", "tls-end-point.ts"]) {
      assert.ok(links.includes(`/portal/guide/files/sdk/${file}`), `the SDK's page links ${file}`);
    }
    assert.ok(links.includes("/portal/guide"));
  });

  it("every link the app page gives to the guide and the SDK answers 200", async () => {
    const page = await publisher.get("/portal/apps/guide.chat");
    assert.equal(page.status, 200);
    const guideLinks = linksOf(mainOf(page.body)).filter((h) => h.startsWith("/portal/guide"));
    assert.deepEqual(guideLinks.sort(), ["/portal/guide#7-integrating-a-client", "/portal/guide/sdk"]);
    for (const href of guideLinks) {
      const [target, fragment] = href.split("#") as [string, string | undefined];
      const res = await publisher.get(target);
      assert.equal(res.status, 200, href);
      if (fragment) assert.ok(idsOf(res.body).has(fragment), href);
    }
  });

  it("serves the SDK and the example as text, and nothing else of the repository", async () => {
    const b = kit.browser();
    const example = await b.get("/portal/guide/files/docs/examples/licence_proof.py");
    assert.equal(example.status, 200);
    assert.match(String(example.headers["content-type"]), /^text\/plain; charset=utf-8/);
    assert.match(example.body, /switchboard-client-licence:0/);
    const proof = await b.get("/portal/guide/files/sdk/proof.ts");
    assert.match(proof.body, /export function canonicalProofString/);
    for (const url of [
      "/portal/guide/files/package.json",
      "/portal/guide/files/src/server/config.ts",
      "/portal/guide/files/sdk/../package.json",
      "/portal/guide/files/sdk/%2e%2e/package.json",
      "/portal/guide/files/docs/operations.md",
    ]) {
      assert.equal((await b.get(url)).status, 404, url);
    }
  });

  it("renders the step-by-step as one numbered list with its commands as code, and no source markers", async () => {
    const guide = mainOf((await kit.browser().get("/portal/guide")).body);
    assert.doesNotMatch(guide, /&lt;!--|runnable/, "snippet markers are not shown");
    assert.doesNotMatch(guide, /``/, "no stray fence characters");
    assert.doesNotMatch(guide, /\*\*/, "no stray bold markers");
    const steps = /<h3 id="71-step-by-step">[\s\S]*?<h3 /.exec(guide)![0];
    assert.equal(steps.match(/<ol/g)?.length, 1, "one list of steps, numbered 1 to 6");
    assert.match(
      steps,
      /<pre class="block"><code>switchboard keygen --out example-chat-linux.key\nswitchboard keygen --out example-chat-android.key\n# example-chat-linux.key /,
    );
  });
});
