/**
 * The repository files the integration guide points publishers at — the client SDK
 * (sdk/, with its example) and the Python example (docs/examples/) — served by the portal so
 * that a publisher outside the project can fetch what the guide names, and the mapping from
 * the documents' relative Markdown links to the addresses that serve them.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PORTAL } from "./env.js";

export const GUIDE_PATH = `${PORTAL}/guide`;
/** The SDK's README, rendered: what the SDK is and a link to each of its files. */
export const SDK_PATH = `${GUIDE_PATH}/sdk`;
/** One served file: FILES_PATH/<path in the repository>. */
export const FILES_PATH = `${GUIDE_PATH}/files`;

/** The repository the server runs from (dist/src/http/portal → the root). */
export const REPOSITORY_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

/** Directories whose files are served, and what a file there must end with. */
const SERVED_DIRECTORIES: readonly { dir: string; ext: RegExp }[] = [
  { dir: "sdk", ext: /\.(ts|md)$/ },
  { dir: "docs/examples", ext: /\.(py|ts|js|sh|md)$/ },
];

async function filesUnder(dir: string, ext: RegExp): Promise<string[]> {
  const entries = await readdir(path.join(REPOSITORY_ROOT, dir), { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const e of entries) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) found.push(...(await filesUnder(rel, ext)));
    else if (e.isFile() && ext.test(e.name)) found.push(rel);
  }
  return found;
}

let served: Promise<ReadonlySet<string>> | undefined;

/** The repository paths the portal serves (read once: they ship with the server). */
export function servedFiles(): Promise<ReadonlySet<string>> {
  served ??= Promise.all(SERVED_DIRECTORIES.map((d) => filesUnder(d.dir, d.ext))).then(
    (lists) => new Set(lists.flat().sort()),
  );
  return served;
}

/** Where the portal serves a repository path, or undefined when it does not. */
export function servedAddress(repoPath: string, files: ReadonlySet<string>): string | undefined {
  if (repoPath === "docs/licensing-protocol.md") return GUIDE_PATH;
  if (repoPath === "sdk" || repoPath === "sdk/README.md") return SDK_PATH;
  return files.has(repoPath) ? `${FILES_PATH}/${repoPath}` : undefined;
}

/**
 * A link resolver for a document at `docDir` (its directory in the repository): a relative
 * Markdown link becomes the portal's address for its target, with its fragment kept.
 */
export function linkResolver(
  docDir: string,
  files: ReadonlySet<string>,
): (href: string) => string | undefined {
  return (href) => {
    const hash = href.indexOf("#");
    const target = hash < 0 ? href : href.slice(0, hash);
    const fragment = hash < 0 ? "" : href.slice(hash);
    if (target === "" || /^[a-z]+:/i.test(target) || target.startsWith("/")) return undefined;
    const repoPath = path.posix.normalize(path.posix.join(docDir, target)).replace(/\/$/, "");
    if (repoPath.startsWith("..")) return undefined;
    const address = servedAddress(repoPath, files);
    return address === undefined ? undefined : `${address}${fragment}`;
  };
}
