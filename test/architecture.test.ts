/**
 * The boundaries of the code, checked on every run: the core imports nothing outside
 * itself (no transport, HTTP, command, module, programme or storage backend); the XML
 * layer imports nothing of the rest of the core; a module reaches another module only
 * through its declared API (`index.ts` or `api.ts`); the licensing domain is reached only
 * through its index and depends on the core's basics alone; the SDK imports nothing of the server.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { REPO_ROOT } from "./helpers/server.js";

interface Import {
  /** The importing file, relative to the repository root. */
  from: string;
  /** The imported file, relative to the repository root (relative imports only). */
  to: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Relative imports (static, dynamic and re-exports) of every TypeScript file under `dirs`. */
function importsOf(...dirs: string[]): Import[] {
  const out: Import[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;
  for (const dir of dirs) {
    for (const file of sourceFiles(path.join(REPO_ROOT, dir))) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(re)) {
        const target = path.resolve(path.dirname(file), m[1]!).replace(/\.js$/, ".ts");
        out.push({ from: path.relative(REPO_ROOT, file), to: path.relative(REPO_ROOT, target) });
      }
    }
  }
  return out;
}

const inside = (file: string, dir: string) => file === dir || file.startsWith(dir + "/");
const show = (bad: Import[]) => bad.map((i) => `  ${i.from} → ${i.to}`).join("\n");

test("the core imports nothing outside src/core", () => {
  const bad = importsOf("src/core").filter((i) => !inside(i.to, "src/core"));
  assert.deepEqual(bad, [], `the core reaches out:\n${show(bad)}`);
});

test("the XML layer imports nothing of the rest of the core", () => {
  const bad = importsOf("src/core/xml").filter((i) => !inside(i.to, "src/core/xml"));
  assert.deepEqual(bad, [], `src/core/xml depends on:\n${show(bad)}`);
});

test("a module uses another module only through its index.ts or api.ts", () => {
  const moduleOf = (file: string) => /^src\/modules\/([^/]+)\//.exec(file)?.[1];
  const bad = importsOf("src/modules").filter((i) => {
    const own = moduleOf(i.from);
    const other = moduleOf(i.to);
    if (other === undefined || other === own) return false;
    return !/^src\/modules\/[^/]+\/(index|api)\.ts$/.test(i.to);
  });
  assert.deepEqual(bad, [], `modules reaching into other modules' internals:\n${show(bad)}`);
});

test("the licensing domain has one front door and knows nothing of streams, commands or pages", () => {
  const outside = importsOf("src").filter(
    (i) =>
      inside(i.to, "src/licensing") && !inside(i.from, "src/licensing") && i.to !== "src/licensing/index.ts",
  );
  assert.deepEqual(outside, [], `reaching past src/licensing/index.ts:\n${show(outside)}`);
  const domain = importsOf("src/licensing").filter(
    (i) =>
      !inside(i.to, "src/licensing") &&
      !(
        inside(i.to, "src/core") &&
        !inside(i.to, "src/core/commands.ts") &&
        !inside(i.to, "src/core/stream")
      ),
  );
  assert.deepEqual(domain, [], `the licensing domain depends on:\n${show(domain)}`);
});

test("the programme's services raise their own refusals: only its command files know the command layer", () => {
  const faces = new Set(["src/programme/commands.ts", "src/programme/mail-commands.ts"]);
  const bad = importsOf("src/programme").filter(
    (i) => inside(i.to, "src/core/commands.ts") && !faces.has(i.from),
  );
  assert.deepEqual(bad, [], `programme services importing the command layer:\n${show(bad)}`);
});

test("the SDK imports nothing of the server", () => {
  const bad = importsOf("sdk").filter((i) => !inside(i.to, "sdk"));
  assert.deepEqual(bad, [], `the SDK depends on the server:\n${show(bad)}`);
});

test("the checks see the code (a broken pattern would pass everything)", () => {
  const all = importsOf("src");
  assert.ok(all.length > 300, `only ${all.length} imports found`);
  assert.ok(all.some((i) => i.from === "src/server/server.ts" && i.to === "src/core/module.ts"));
});
