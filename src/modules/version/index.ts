/**
 * Software Version (XEP-0092) of the server: name "Switchboard" and the
 * version from package.json. The operating system is left out unless the
 * operator enables it (XEP-0092 §5: revealing it can help attackers).
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import { defineModule } from "../../core/module.js";
import { x } from "../../core/xml/element.js";
import { NS_VERSION } from "../../core/xml/namespaces.js";

/** The version in the nearest package.json above this file (source and compiled layouts differ in depth). */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { version?: unknown };
      if (typeof pkg.version === "string") return pkg.version;
    } catch {
      // no readable package.json here: keep looking upwards
    }
    const parent = path.dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

/** Read once, when the module is first imported. */
const VERSION = packageVersion();

export default defineModule({
  name: "version",
  description: "Software version of the server (XEP-0092)",
  xeps: [{ xep: "0092", version: "1.1", status: "complete" }],
  options: z.object({
    /** Include the operating system (type and release) in answers. */
    showOs: z.boolean().default(false),
  }),
  setup(ctx) {
    const osText = ctx.options.showOs ? `${os.type()} ${os.release()}` : undefined;
    ctx.addFeature(NS_VERSION, "host");

    ctx.handleIq({ target: "host", type: "get", xmlns: NS_VERSION }, ({ payload }) => {
      if (payload.name !== "query") throw new StanzaError("bad-request", "expected a <query/> element");
      return x(
        "query",
        { xmlns: NS_VERSION },
        x("name", null, "Switchboard"),
        x("version", null, VERSION),
        osText !== undefined && x("os", null, osText),
      );
    });
  },
});

export { NS_VERSION } from "../../core/xml/namespaces.js";
