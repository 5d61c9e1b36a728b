/** The portal's Markdown renderer, on the constructs the guide and the SDK's README use. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { markdownPage } from "../../src/http/portal/markdown.js";
import { linkResolver } from "../../src/http/portal/publisher-files.js";

const render = (md: string, link?: (href: string) => string | undefined) =>
  markdownPage(md, link ? { link } : {}).value;

describe("portal Markdown", () => {
  it("keeps a numbered list whole across items holding paragraphs and indented code", () => {
    const md = [
      "1. **Generate** a key:",
      "",
      "   <!-- runnable -->",
      "   ```sh",
      "   switchboard keygen --out a.key",
      "   # a.key  private key",
      "   ```",
      "",
      "   Any Ed25519 tool will do.",
      "",
      "2. **Register** it.",
      "3. Ship.",
      "",
      "After the list.",
    ].join("\n");
    assert.equal(
      render(md),
      [
        "<ol><li><p><strong>Generate</strong> a key:</p>",
        '<pre class="block"><code>switchboard keygen --out a.key\n# a.key  private key</code></pre>',
        "<p>Any Ed25519 tool will do.</p></li><li><strong>Register</strong> it.</li><li>Ship.</li></ol>",
        "<p>After the list.</p>",
      ].join("\n"),
    );
  });

  it("keeps a list's first number and nests an indented list", () => {
    assert.equal(render("4. four\n5. five"), '<ol start="4"><li>four</li><li>five</li></ol>');
    assert.equal(
      render("- a\n  - a1\n  - a2\n- b"),
      "<ul><li><p>a</p>\n<ul><li>a1</li><li>a2</li></ul></li><li>b</li></ul>",
    );
  });

  it("drops HTML comments, draws rules, and joins continued item lines", () => {
    assert.equal(
      render("<!-- runnable: save as x.py -->\n---\n- one\n  two"),
      "<hr>\n<ul><li>one two</li></ul>",
    );
    assert.equal(render("<!--\nseveral\nlines -->\ntext"), "<p>text</p>");
  });

  it("bold and emphasis may wrap code; underscores inside words and code stay", () => {
    assert.equal(
      render("Namespace: **`urn:x:0`**, an _unlicensed_ client, key_id, `a_b_c`"),
      "<p>Namespace: <strong><code>urn:x:0</code></strong>, an <em>unlicensed</em> client, key_id, <code>a_b_c</code></p>",
    );
  });

  it("escapes text and code", () => {
    assert.equal(render("a <b> & `<c>`"), "<p>a &lt;b&gt; &amp; <code>&lt;c&gt;</code></p>");
  });

  it("links http(s) and in-page targets; a relative one only where it is served", () => {
    const files = new Set(["docs/examples/licence_proof.py", "sdk/proof.ts"]);
    const link = linkResolver("docs", files);
    assert.equal(
      render(
        "[`py`](examples/licence_proof.py) [SDK](../sdk/README.md) [s](../sdk/proof.ts) [g](licensing-protocol.md#6-versions) [x](scaling.md#a) [w](https://e.org/) [h](#top) [up](../../etc/passwd)",
        link,
      ),
      '<p><a href="/portal/guide/files/docs/examples/licence_proof.py"><code>py</code></a> <a href="/portal/guide/sdk">SDK</a> <a href="/portal/guide/files/sdk/proof.ts">s</a> <a href="/portal/guide#6-versions">g</a> x <a href="https://e.org/">w</a> <a href="#top">h</a> up</p>',
    );
    // Without a resolver, relative links keep only their label.
    assert.equal(render("[s](../sdk/proof.ts)"), "<p>s</p>");
  });
});
