/**
 * Which online entities want which PEP notifications (XEP-0163 §4 filtered notifications):
 * their presence carries entity capabilities (XEP-0115); the server asks the entity's
 * disco#info once per verification string, checks the hash (§5.1, so one client cannot
 * poison the cache for others), and remembers the features ending in "+notify".
 */
import { createHash } from "node:crypto";
import type { XmlElement } from "../../core/xml/element.js";
import { NS_DATA } from "../../core/xml/namespaces.js";

export interface Caps {
  node: string;
  ver: string;
  hash: string;
}

const HASHES: Record<string, string> = { "sha-1": "sha1", "sha-256": "sha256", "sha-512": "sha512" };

/** The verification string of a disco#info answer (XEP-0115 §5.1), or undefined for an unsupported hash. */
export function capsVer(info: XmlElement, hash: string): string | undefined {
  const algorithm = HASHES[hash];
  if (!algorithm) return undefined;
  const identities = info
    .getChildren("identity")
    .map(
      (i) =>
        `${i.attrs.category ?? ""}/${i.attrs.type ?? ""}/${i.attrs["xml:lang"] ?? ""}/${i.attrs.name ?? ""}`,
    )
    .sort();
  const features = info
    .getChildren("feature")
    .map((f) => f.attrs.var ?? "")
    .sort();
  const forms = info
    .getChildren("x", NS_DATA)
    .map((form) => {
      const fields = form.getChildren("field");
      const type = fields.find((f) => f.attrs.var === "FORM_TYPE")?.getChildText("value") ?? "";
      const rest = fields
        .filter((f) => f.attrs.var !== "FORM_TYPE")
        .map((f) => ({
          name: f.attrs.var ?? "",
          values: f
            .getChildren("value")
            .map((v) => v.text())
            .sort(),
        }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { type, text: rest.map((f) => `${f.name}<${f.values.map((v) => `${v}<`).join("")}`).join("") };
    })
    .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  let s = identities.map((i) => `${i}<`).join("") + features.map((f) => `${f}<`).join("");
  for (const form of forms) s += `${form.type}<${form.text}`;
  return createHash(algorithm).update(s, "utf8").digest("base64");
}

/** The nodes an entity asked notifications for: its "+notify" features without the suffix. */
export function notifyNodes(info: XmlElement): Set<string> {
  const nodes = new Set<string>();
  for (const f of info.getChildren("feature")) {
    const v = f.attrs.var;
    if (v?.endsWith("+notify")) nodes.add(v.slice(0, -"+notify".length));
  }
  return nodes;
}

/** Verified capabilities by hash and verification string, bounded (least recently added go first). */
export class CapsCache {
  private readonly byVer = new Map<string, Set<string>>();

  constructor(private readonly limit: number) {}

  get(caps: Caps): Set<string> | undefined {
    return this.byVer.get(`${caps.hash} ${caps.ver}`);
  }

  set(caps: Caps, nodes: Set<string>): void {
    const key = `${caps.hash} ${caps.ver}`;
    this.byVer.delete(key);
    this.byVer.set(key, nodes);
    while (this.byVer.size > this.limit) this.byVer.delete(this.byVer.keys().next().value!);
  }
}

/**
 * For each local account, the online entities (its own resources and its contacts' full
 * JIDs) whose presence it received, with the nodes they want notifications for.
 */
export class Interest {
  private readonly byAccount = new Map<string, Map<string, Set<string>>>();

  set(account: string, entity: string, nodes: Set<string>): void {
    let entities = this.byAccount.get(account);
    if (!entities) {
      entities = new Map();
      this.byAccount.set(account, entities);
    }
    entities.set(entity, nodes);
  }

  has(account: string, entity: string): boolean {
    return this.byAccount.get(account)?.has(entity) ?? false;
  }

  remove(account: string, entity: string): void {
    const entities = this.byAccount.get(account);
    if (!entities) return;
    entities.delete(entity);
    if (entities.size === 0) this.byAccount.delete(account);
  }

  forget(account: string): void {
    this.byAccount.delete(account);
  }

  /** Entities of `account` that want notifications of `node`. */
  wanting(account: string, node: string): string[] {
    const out: string[] = [];
    for (const [entity, nodes] of this.byAccount.get(account) ?? []) if (nodes.has(node)) out.push(entity);
    return out;
  }
}
