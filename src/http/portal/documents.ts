/**
 * The two documents the portal points publishers at: the programme's terms (the page the
 * application form's checkbox links to; `http.termsUrl` sends it to the operator's own
 * text instead) and the integration guide — the protocol document
 * docs/licensing-protocol.md, rendered as a page so its sections can be linked to.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { emptyState } from "../assets/components.js";
import { html, type SafeHtml } from "../html.js";
import { PORTAL, type PortalEnv, route } from "./env.js";
import { markdownPage } from "./markdown.js";

export const TERMS_PATH = `${PORTAL}/terms`;
export const GUIDE_PATH = `${PORTAL}/guide`;
/** The section of the guide on writing a client. */
export const INTEGRATION_ANCHOR = "7-integrating-a-client";

/** The protocol document, from the repository the server runs from (dist/src/http/portal → docs/). */
const GUIDE_FILE = fileURLToPath(new URL("../../../../docs/licensing-protocol.md", import.meta.url));

/** Where the application form's terms link goes. */
export function termsHref(termsUrl: string | undefined): string {
  return termsUrl ?? TERMS_PATH;
}

function defaultTerms(network: string): SafeHtml {
  return html`<h1>Terms of the licensing programme</h1>
    <p>These terms apply to every client app licensed to connect to <strong>${network}</strong>. By applying, a publisher accepts them for the app and everyone who builds it.</p>
    <ol class="terms" data-testid="terms">
      <li><strong>What a licence is.</strong> A licence lets the app identify itself to this network with a key pair the publisher registers. It says nothing about the app's quality and gives no right to the network's users or their data.</li>
      <li><strong>Keys.</strong> The publisher keeps each private key secret and revokes a key at once (on the app's page) when it may have leaked. Traffic signed with a registered key counts as the publisher's app.</li>
      <li><strong>Honest identification.</strong> The app reports its real client id, version and platform, and never lets another program use its key.</li>
      <li><strong>Versions.</strong> The operators may set a minimum version, block versions and announce cutoffs. Releases older than a minimum are refused; the publisher keeps an upgrade path open for its users.</li>
      <li><strong>Notices.</strong> The operators send notices by mail and in this portal. Notices that ask for it are acknowledged by the publisher within the time they give.</li>
      <li><strong>Suspension and revocation.</strong> The operators may suspend or revoke a licence or a key, with immediate effect, when these terms are broken or the network is at risk; affected sessions are closed. A licence ends on its end date unless extended.</li>
      <li><strong>Changes.</strong> The operators may change these terms with a notice to every publisher; continuing to use the licence after the date the notice gives means accepting them.</li>
    </ol>
    <p class="muted">Questions about these terms go to the network's operators.</p>`;
}

let guide: Promise<string | undefined> | undefined;

function guideText(): Promise<string | undefined> {
  guide ??= readFile(GUIDE_FILE, "utf8").catch(() => undefined);
  return guide;
}

export function registerDocuments(app: FastifyInstance, env: PortalEnv): void {
  const { config } = env.deps;

  app.get(route(TERMS_PATH), async (request, reply) => {
    const own = config.http.termsUrl;
    if (own) return reply.code(302).header("location", own).send("");
    return env.page(request, reply, { title: "Terms", body: defaultTerms(config.domain) });
  });

  app.get(route(GUIDE_PATH), async (request, reply) => {
    const text = await guideText();
    return env.page(request, reply, {
      title: "Integration guide",
      status: text === undefined ? 404 : 200,
      body:
        text === undefined
          ? emptyState(
              "The integration guide is not installed with this server (docs/licensing-protocol.md).",
            )
          : html`<article class="prose" data-testid="guide">${markdownPage(text)}</article>`,
    });
  });
}
