/**
 * Static files of the portal and the console, served from memory under /assets/: our
 * stylesheet and small scripts (kept as plain files beside this module, no build step), htmx
 * and Chart.js from node_modules. URLs carry a content hash, so browsers may cache them for good.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

export const ASSET_PREFIX = "/assets/";

interface Asset {
  body: Buffer;
  type: string;
  /** First hex digits of the SHA-256 of the content. */
  version: string;
}

const OWN_FILES = ["style.css", "app.js", "dashboard.js", "keys.js"];

/**
 * Our files live in src/http/assets; tsc copies only .ts, so code compiled to
 * dist/src/http/assets finds them through the source tree.
 */
function ownDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  if (existsSync(path.join(here, "style.css"))) return here;
  const inSource = path.resolve(here, "../../../../src/http/assets");
  if (existsSync(path.join(inSource, "style.css"))) return inSource;
  throw new Error(`the web assets (style.css, …) are in neither ${here} nor ${inSource}`);
}

function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  // chart.js exports no subpaths: find its dist folder from the main entry.
  const chartDist = path.dirname(require.resolve("chart.js"));
  return {
    "htmx.min.js": require.resolve("htmx.org/dist/htmx.min.js"),
    "chart.umd.min.js": path.join(chartDist, "chart.umd.min.js"),
  };
}

const TYPES: Record<string, string> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
};

let loaded: Map<string, Asset> | undefined;

function assets(): Map<string, Asset> {
  if (loaded) return loaded;
  const dir = ownDir();
  const files: Record<string, string> = {
    ...Object.fromEntries(OWN_FILES.map((f) => [f, path.join(dir, f)])),
    ...vendorFiles(),
  };
  const map = new Map<string, Asset>();
  for (const [name, file] of Object.entries(files)) {
    const body = readFileSync(file);
    map.set(name, {
      body,
      type: TYPES[path.extname(name)] ?? "application/octet-stream",
      version: createHash("sha256").update(body).digest("hex").slice(0, 12),
    });
  }
  loaded = map;
  return map;
}

/** The URL of an asset, with its content version. */
export function assetUrl(name: string): string {
  const asset = assets().get(name);
  if (!asset) throw new Error(`no asset ${name}`);
  return `${ASSET_PREFIX}${name}?v=${asset.version}`;
}

/** GET /assets/<name> (the plugin is mounted at /assets): long-lived caching when the URL names the current version. */
export function registerAssetRoutes(app: FastifyInstance): void {
  assets();
  app.get<{ Params: { name: string }; Querystring: { v?: string } }>("/:name", async (request, reply) => {
    const asset = assets().get(request.params.name);
    if (!asset) {
      return reply.code(404).type("text/plain; charset=utf-8").send("no such file");
    }
    const etag = `"${asset.version}"`;
    reply
      .header("etag", etag)
      .header("x-content-type-options", "nosniff")
      .header(
        "cache-control",
        request.query.v === asset.version ? "public, max-age=31536000, immutable" : "no-cache",
      );
    if (request.headers["if-none-match"] === etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  });
}
