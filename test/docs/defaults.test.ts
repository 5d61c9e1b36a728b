/**
 * The defaults the documents state are the defaults the server has: every
 * `modules.licensing.*` row of docs/configuration.md against the module's option schema (and
 * likewise the group chat, upload, external services and storage rows), and what
 * docs/licensing-protocol.md says is on or off by default.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ExternalServicesSchema } from "../../src/modules/external-services/config.js";
import { LicensingOptions } from "../../src/modules/licensing/index.js";
import { MucSchema } from "../../src/modules/muc/config.js";
import { UploadSchema } from "../../src/modules/upload/config.js";
import { StorageSchema } from "../../src/storage/config.js";
import { REPO_ROOT } from "../helpers/server.js";

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), "utf8");
const defaults = LicensingOptions.parse({}) as Record<string, unknown>;

/** A documented default as a value: `250` → 250, `false` → false; undefined for prose. */
function documented(cell: string): unknown {
  const m = /^`([^`]*)`$/.exec(cell.trim());
  if (!m) return undefined;
  const text = m[1]!;
  if (text === "true" || text === "false") return text === "true";
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

test("docs/configuration.md states the licensing module's defaults", () => {
  const rows = read("docs/configuration.md")
    .split("\n")
    .filter((l) => l.startsWith("| `modules.licensing."));
  assert.ok(rows.length >= 8, "the licensing rows are in the table");
  let compared = 0;
  for (const row of rows) {
    const [, keys, values] = row.split("|").map((c) => c.trim()) as [string, string, string];
    const names = keys.split("/").map((k) =>
      k
        .trim()
        .replace(/`/g, "")
        .replace(/^modules\.licensing\./, ""),
    );
    const cells = values.split("/");
    names.forEach((name, i) => {
      const stated = documented(cells[i] ?? "");
      if (stated === undefined) return;
      assert.ok(name in defaults, `${name} is documented but is not an option`);
      assert.deepEqual(
        stated,
        defaults[name],
        `modules.licensing.${name}: the documentation says ${cells[i]}`,
      );
      compared++;
    });
  }
  assert.ok(compared >= 8, `only ${compared} defaults compared`);
});

test("docs/licensing-protocol.md says queryClientVersion is on or off as it is", () => {
  const text = read("docs/licensing-protocol.md").replace(/\s+/g, " ");
  const m =
    /(on|off) by default,? `modules\.licensing\.queryClientVersion|queryClientVersion`?,? (on|off) by default/.exec(
      text,
    );
  assert.ok(m, "the protocol says whether the server asks unlicensed clients their version");
  assert.equal(m[1] ?? m[2], defaults.queryClientVersion ? "on" : "off");
});

test("docs/configuration.md states the group chat defaults", () => {
  const defaults = MucSchema.parse(undefined) as Record<string, unknown>;
  const rows = read("docs/configuration.md")
    .split("\n")
    .filter((l) => l.startsWith("| `muc.") && !l.startsWith("| `muc.roomDefaults"));
  let compared = 0;
  for (const row of rows) {
    const [, key, value] = row.split("|").map((c) => c.trim()) as [string, string, string];
    const name = key.replace(/`/g, "").replace(/^muc\./, "");
    const m = /^`([^`]*)`$/.exec(value);
    assert.ok(m, `muc.${name}: the default is not stated`);
    let stated: unknown;
    try {
      stated = JSON.parse(m[1]!);
    } catch {
      stated = m[1];
    }
    assert.ok(name in defaults, `muc.${name} is documented but is not an option`);
    assert.deepEqual(stated, defaults[name], `muc.${name}: the documentation says ${value}`);
    compared++;
  }
  const documented = new Set(
    rows.map((r) =>
      r
        .split("|")[1]!
        .trim()
        .replace(/`/g, "")
        .replace(/^muc\./, ""),
    ),
  );
  for (const name of Object.keys(defaults))
    if (name !== "roomDefaults") assert.ok(documented.has(name), `muc.${name} is not documented`);
  assert.ok(compared >= 10, `only ${compared} defaults compared`);
});

test("docs/configuration.md states the file upload defaults", () => {
  const defaults = UploadSchema.parse(undefined) as Record<string, unknown>;
  const rows = read("docs/configuration.md")
    .split("\n")
    .filter((l) => l.startsWith("| `upload."));
  const documented = new Set<string>();
  for (const row of rows) {
    const [, key, value] = row.split("|").map((c) => c.trim()) as [string, string, string];
    const name = key.replace(/`/g, "").replace(/^upload\./, "");
    const m = /^`([^`]*)`$/.exec(value);
    assert.ok(m, `upload.${name}: the default is not stated`);
    let stated: unknown;
    try {
      stated = JSON.parse(m[1]!);
    } catch {
      stated = m[1];
    }
    assert.ok(name in defaults, `upload.${name} is documented but is not an option`);
    assert.deepEqual(stated, defaults[name], `upload.${name}: the documentation says ${value}`);
    documented.add(name);
  }
  for (const name of Object.keys(defaults))
    assert.ok(documented.has(name), `upload.${name} is not documented`);
});

test("docs/configuration.md states the external services defaults", () => {
  const defaults = ExternalServicesSchema.parse(undefined) as Record<string, unknown>;
  const rows = read("docs/configuration.md")
    .split("\n")
    .filter((l) => l.startsWith("| `externalServices."));
  const documented = new Set<string>();
  for (const row of rows) {
    const [, key, value] = row.split("|").map((c) => c.trim()) as [string, string, string];
    const name = key.replace(/`/g, "").replace(/^externalServices\./, "");
    const m = /^`([^`]*)`$/.exec(value);
    assert.ok(m, `externalServices.${name}: the default is not stated`);
    assert.ok(name in defaults, `externalServices.${name} is documented but is not an option`);
    assert.deepEqual(
      JSON.parse(m[1]!),
      defaults[name],
      `externalServices.${name}: the documentation says ${value}`,
    );
    documented.add(name);
  }
  for (const name of Object.keys(defaults))
    assert.ok(documented.has(name), `externalServices.${name} is not documented`);
});

test("docs/configuration.md states the storage defaults", () => {
  const defaults = StorageSchema.parse(undefined) as Record<string, unknown>;
  const rows = read("docs/configuration.md")
    .split("\n")
    .filter((l) => l.startsWith("| `storage."));
  const documentedKeys = new Set<string>();
  let compared = 0;
  for (const row of rows) {
    // | key | command line | environment | default | meaning |
    const cells = row.split("|").map((c) => c.trim());
    const name = cells[1]!.replace(/`/g, "").replace(/^storage\./, "");
    documentedKeys.add(name);
    const stated = documented(cells[4]!);
    if (stated === undefined) continue; // prose: "none", "from `storage.url`"
    assert.ok(name in defaults, `storage.${name} is documented but is not an option`);
    assert.deepEqual(stated, defaults[name], `storage.${name}: the documentation says ${cells[4]}`);
    compared++;
  }
  for (const name of [...Object.keys(defaults), "url"])
    assert.ok(documentedKeys.has(name), `storage.${name} is not documented`);
  assert.ok(compared >= 8, `only ${compared} defaults compared`);
});
