/**
 * The documents the portal points publishers at: the programme's terms (the page the
 * application form's checkbox links to; `http.termsUrl` sends it to the operator's own
 * text instead), the integration guide — the protocol document docs/licensing-protocol.md,
 * rendered as a page so its sections can be linked to — and what the guide links to: the
 * SDK's README as a page, and the SDK's and the examples' files (publisher-files.ts).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { emptyState } from "../assets/components.js";
import { html, type SafeHtml } from "../html.js";
import { PORTAL, type PortalEnv, route } from "./env.js";
import { markdownPage } from "./markdown.js";
import {
  FILES_PATH,
  GUIDE_PATH,
  linkResolver,
  REPOSITORY_ROOT,
  SDK_PATH,
  servedFiles,
} from "./publisher-files.js";

export { GUIDE_PATH, SDK_PATH };
export const TERMS_PATH = `${PORTAL}/terms`;
/** The section of the guide on writing a client. */
export const INTEGRATION_ANCHOR = "7-integrating-a-client";

/** The documents rendered as pages, by their path in the repository the server runs from. */
const GUIDE_FILE = "docs/licensing-protocol.md";
const SDK_README = "sdk/README.md";

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

const texts = new Map<string, Promise<string | undefined>>();

/** A repository file's text (read once: it ships with the server), undefined when absent. */
function repositoryText(repoPath: string): Promise<string | undefined> {
  let text = texts.get(repoPath);
  if (!text) {
    text = readFile(path.join(REPOSITORY_ROOT, repoPath), "utf8").catch(() => undefined);
    texts.set(repoPath, text);
  }
  return text;
}

/** A Markdown document of the repository as the body of a page, its relative links served. */
async function documentBody(repoPath: string, testid: string): Promise<SafeHtml | undefined> {
  const text = await repositoryText(repoPath);
  if (text === undefined) return undefined;
  const link = linkResolver(path.posix.dirname(repoPath), await servedFiles());
  return html`<article class="prose" data-testid="${testid}">${markdownPage(text, { link })}</article>`;
}

export function registerDocuments(app: FastifyInstance, env: PortalEnv): void {
  const { config } = env.deps;

  app.get(route(TERMS_PATH), async (request, reply) => {
    const own = config.http.termsUrl;
    if (own) return reply.code(302).header("location", own).send("");
    return env.page(request, reply, { title: "Terms", body: defaultTerms(config.domain) });
  });

  for (const [address, file, title, testid] of [
    [GUIDE_PATH, GUIDE_FILE, "Integration guide", "guide"],
    [SDK_PATH, SDK_README, "Client SDK", "sdk-readme"],
  ] as const) {
    app.get(route(address), async (request, reply) => {
      const body = await documentBody(file, testid);
      return env.page(request, reply, {
        title,
        status: body === undefined ? 404 : 200,
        body: body ?? emptyState(`This document is not installed with this server (${file}).`),
      });
    });
  }

  // The SDK's and the examples' files, as text: what the guide tells publishers to copy.
  app.get(route(`${FILES_PATH}/*`), async (request, reply) => {
    const repoPath = (request.params as { "*": string })["*"];
    const text = (await servedFiles()).has(repoPath) ? await repositoryText(repoPath) : undefined;
    if (text === undefined) {
      return env.page(request, reply, {
        title: "Not found",
        status: 404,
        body: emptyState(`The portal serves no file ${repoPath}.`),
      });
    }
    return reply
      .type("text/plain; charset=utf-8")
      .header("content-disposition", `inline; filename="${path.posix.basename(repoPath)}"`)
      .send(text);
  });
}
