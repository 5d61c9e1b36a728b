/**
 * Archiving preferences (XEP-0441, in the urn:xmpp:mam:2 namespace): a default mode and
 * lists of JIDs always or never archived. Kept per account in a key-value store.
 */
import { StanzaError } from "../../core/errors.js";
import { JidError, parseJid } from "../../core/jid.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_MAM } from "../../core/xml/namespaces.js";
import { sameNsChild } from "./query.js";

export type ArchiveMode = "always" | "never" | "roster";

export interface ArchivePrefs {
  default: ArchiveMode;
  /** Normalised JIDs, bare or full. */
  always: string[];
  never: string[];
}

const MODES = new Set<string>(["always", "never", "roster"]);

/**
 * What the preferences say for a peer: "never" when a list says never (never wins over
 * always for a JID in both), "always" when a list says always, else the default. A bare
 * JID in a list covers all its resources; a full JID only itself.
 */
export function modeFor(prefs: ArchivePrefs, peerBare: string, peerFull: string): ArchiveMode {
  const listed = (list: string[]) =>
    list.includes(peerBare) || (peerFull !== peerBare && list.includes(peerFull));
  if (listed(prefs.never)) return "never";
  if (listed(prefs.always)) return "always";
  return prefs.default;
}

export function prefsElement(prefs: ArchivePrefs): XmlElement {
  const list = (name: string, jids: string[]) => x(name, null, ...jids.map((j) => x("jid", null, j)));
  return x(
    "prefs",
    { xmlns: NS_MAM, default: prefs.default },
    list("always", prefs.always),
    list("never", prefs.never),
  );
}

/** Reads a <prefs/> set by a client; bad input is a bad-request (or jid-malformed) error. */
export function parsePrefs(el: XmlElement, maxJids: number): ArchivePrefs {
  const mode = el.attrs.default;
  if (mode === undefined || !MODES.has(mode))
    throw new StanzaError("bad-request", "default must be always, never or roster");
  const jids = (name: string): string[] => {
    const list = sameNsChild(el, name, NS_MAM);
    if (!list) return [];
    const out = new Set<string>();
    for (const j of list.elements()) {
      if (j.name !== "jid") throw new StanzaError("bad-request", `unexpected <${j.name}/> in <${name}/>`);
      try {
        out.add(parseJid(j.text().trim()).toString());
      } catch (err) {
        if (err instanceof JidError) throw new StanzaError("jid-malformed", `${j.text()}: ${err.message}`);
        throw err;
      }
    }
    if (out.size > maxJids) throw new StanzaError("not-acceptable", `at most ${maxJids} JIDs in <${name}/>`);
    return [...out];
  };
  return { default: mode as ArchiveMode, always: jids("always"), never: jids("never") };
}

/** Stored preferences back (undefined when damaged or absent). */
export function parseStoredPrefs(json: string | undefined): ArchivePrefs | undefined {
  if (json === undefined) return undefined;
  try {
    const v = JSON.parse(json) as Partial<ArchivePrefs>;
    if (typeof v.default !== "string" || !MODES.has(v.default)) return undefined;
    const strings = (a: unknown) =>
      Array.isArray(a) ? a.filter((s): s is string => typeof s === "string") : [];
    return { default: v.default, always: strings(v.always), never: strings(v.never) };
  } catch {
    return undefined;
  }
}
