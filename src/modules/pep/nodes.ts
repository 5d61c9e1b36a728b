/**
 * An account's PEP nodes as stored: one key-value entry per node (per account) holding the
 * node's configuration and its items, oldest first. Configuration is read from and
 * written to XEP-0004 forms (pubsub#node_config, pubsub#publish-options).
 */
import { StanzaError } from "../../core/errors.js";
import type { KeyValueStore } from "../../core/storage/types.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_DATA, NS_PUBSUB_ERRORS } from "../../core/xml/namespaces.js";

export const ACCESS_MODELS = ["presence", "open", "whitelist"] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export const SEND_LAST = ["never", "on_sub", "on_sub_and_presence"] as const;
export type SendLast = (typeof SEND_LAST)[number];

export interface NodeConfig {
  accessModel: AccessModel;
  /** Items kept; "max" is the server's limit. */
  maxItems: number | "max";
  persistItems: boolean;
  sendLastPublishedItem: SendLast;
  notifyRetract: boolean;
  notifyDelete: boolean;
  /** pubsub#title, a short name for the node (the 'name' of its disco#items entry); absent when unset. */
  title?: string;
  /** pubsub#description, absent when unset. */
  description?: string;
}

/** The longest pubsub#title or pubsub#description kept (characters). */
export const MAX_TEXT_OPTION = 1024;

export interface StoredItem {
  id: string;
  /** The payload element, serialized. */
  payload: string;
  at: number;
}

export interface StoredNode {
  config: NodeConfig;
  items: StoredItem[];
}

export const DEFAULT_CONFIG: Readonly<NodeConfig> = {
  accessModel: "presence",
  maxItems: 1,
  persistItems: true,
  sendLastPublishedItem: "on_sub_and_presence",
  notifyRetract: true,
  notifyDelete: true,
};

export const NODE_CONFIG_FORM = "http://jabber.org/protocol/pubsub#node_config";
export const PUBLISH_OPTIONS_FORM = "http://jabber.org/protocol/pubsub#publish-options";

export function pubsubError(
  condition: ConstructorParameters<typeof StanzaError>[0],
  app: string | undefined,
  text?: string,
): StanzaError {
  return new StanzaError(condition, text, app ? { appCondition: x(app, { xmlns: NS_PUBSUB_ERRORS }) } : {});
}

/** Field values of a submitted form, by var (a field may repeat values). */
export function formFields(form: XmlElement): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const f of form.getChildren("field")) {
    const name = f.attrs.var;
    if (name === undefined) continue;
    fields.set(
      name,
      f.getChildren("value").map((v) => v.text()),
    );
  }
  return fields;
}

/**
 * The value of a boolean field: one <value/> of "0", "1", "false" or "true" (XEP-0004 §3.3;
 * white space around it is collapsed, as for xs:boolean). Anything else, an empty value too,
 * is invalid data, which is not-acceptable (XEP-0004 §3.4, XEP-0060 §8.2.5), not false.
 */
/** A text-single option: empty clears it; longer than MAX_TEXT_OPTION is not-acceptable. */
function text(name: string, value: string): string | undefined {
  if (value.length > MAX_TEXT_OPTION)
    throw new StanzaError("not-acceptable", `${name}: longer than ${MAX_TEXT_OPTION} characters`);
  return value === "" ? undefined : value;
}

function bool(name: string, values: string[]): boolean {
  const v = values.length === 1 ? values[0]!.trim() : undefined;
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  throw new StanzaError("not-acceptable", `${name}: a boolean is 0, 1, false or true`);
}

/**
 * Applies the known fields of a form to a configuration. Unknown fields are ignored (a
 * client may send options this server has no use for); a known field with a value outside
 * its range or of the wrong type is not-acceptable.
 */
export function applyForm(base: NodeConfig, fields: Map<string, string[]>): NodeConfig {
  const config = { ...base };
  for (const [name, values] of fields) {
    const v = values[0] ?? "";
    switch (name) {
      case "pubsub#access_model":
        if (!(ACCESS_MODELS as readonly string[]).includes(v))
          throw pubsubError(
            "not-acceptable",
            "unsupported-access-model",
            `access model ${v} is not supported`,
          );
        config.accessModel = v as AccessModel;
        break;
      case "pubsub#max_items":
        if (v === "max") config.maxItems = "max";
        // A safe integer only: a larger one would be stored as a float and shown as "1e+24",
        // which this same check refuses when a client submits the form back unchanged.
        else if (/^\d+$/.test(v) && Number(v) >= 1 && Number.isSafeInteger(Number(v)))
          config.maxItems = Number(v);
        else
          throw new StanzaError("not-acceptable", `pubsub#max_items: ${v} is not a positive number or "max"`);
        break;
      case "pubsub#persist_items":
        config.persistItems = bool(name, values);
        break;
      case "pubsub#send_last_published_item":
        if (!(SEND_LAST as readonly string[]).includes(v))
          throw new StanzaError("not-acceptable", `pubsub#send_last_published_item: ${v} is not supported`);
        config.sendLastPublishedItem = v as SendLast;
        break;
      case "pubsub#notify_retract":
        config.notifyRetract = bool(name, values);
        break;
      case "pubsub#notify_delete":
        config.notifyDelete = bool(name, values);
        break;
      case "pubsub#title":
        config.title = text(name, v);
        break;
      case "pubsub#description":
        config.description = text(name, v);
        break;
      default:
        break;
    }
  }
  return config;
}

/** The node configuration fields this service has (those applyForm reads). */
export const CONFIG_FIELDS: ReadonlySet<string> = new Set([
  "pubsub#access_model",
  "pubsub#max_items",
  "pubsub#persist_items",
  "pubsub#send_last_published_item",
  "pubsub#notify_retract",
  "pubsub#notify_delete",
  "pubsub#title",
  "pubsub#description",
]);

/** Does the node's configuration satisfy the publish-options preconditions (XEP-0060 §7.1.5)? */
export function meetsPreconditions(config: NodeConfig, fields: Map<string, string[]>): boolean {
  const wanted = applyForm(config, fields);
  return (
    wanted.accessModel === config.accessModel &&
    wanted.maxItems === config.maxItems &&
    wanted.persistItems === config.persistItems &&
    wanted.sendLastPublishedItem === config.sendLastPublishedItem &&
    wanted.notifyRetract === config.notifyRetract &&
    wanted.notifyDelete === config.notifyDelete &&
    wanted.title === config.title &&
    wanted.description === config.description
  );
}

/** The node_config form of a configuration (configure get). */
export function configForm(config: NodeConfig): XmlElement {
  const field = (name: string, type: string, label: string, value: string, options?: readonly string[]) =>
    x(
      "field",
      { var: name, type, label },
      x("value", null, value),
      ...(options ?? []).map((o) => x("option", null, x("value", null, o))),
    );
  const textField = (name: string, label: string, value: string | undefined) =>
    x("field", { var: name, type: "text-single", label }, value !== undefined && x("value", null, value));
  return x(
    "x",
    { xmlns: NS_DATA, type: "form" },
    x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", null, NODE_CONFIG_FORM)),
    textField("pubsub#title", "A short name for the node", config.title),
    textField("pubsub#description", "A description of the node", config.description),
    field(
      "pubsub#access_model",
      "list-single",
      "Who may subscribe and retrieve items",
      config.accessModel,
      ACCESS_MODELS,
    ),
    field("pubsub#max_items", "text-single", "Items kept", String(config.maxItems)),
    field("pubsub#persist_items", "boolean", "Keep items", config.persistItems ? "1" : "0"),
    field(
      "pubsub#send_last_published_item",
      "list-single",
      "When to send the last item",
      config.sendLastPublishedItem,
      SEND_LAST,
    ),
    field("pubsub#notify_retract", "boolean", "Notify retractions", config.notifyRetract ? "1" : "0"),
    field("pubsub#notify_delete", "boolean", "Notify node deletion", config.notifyDelete ? "1" : "0"),
  );
}

/** The stored nodes of every account, in one key-value store ("pep"), key = node name. */
export class PepNodes {
  constructor(
    private readonly store: KeyValueStore,
    /** What "max" and larger max_items values mean. */
    private readonly itemLimit: number,
  ) {}

  async get(account: string, node: string): Promise<StoredNode | undefined> {
    const raw = await this.store.get(account, node);
    return raw === undefined ? undefined : (JSON.parse(raw) as StoredNode);
  }

  async put(account: string, node: string, value: StoredNode): Promise<void> {
    const cap =
      value.config.maxItems === "max" ? this.itemLimit : Math.min(value.config.maxItems, this.itemLimit);
    const items = value.config.persistItems ? value.items.slice(-cap) : [];
    await this.store.set(account, node, JSON.stringify({ config: value.config, items }));
  }

  async delete(account: string, node: string): Promise<void> {
    await this.store.delete(account, node);
  }

  names(account: string): Promise<string[]> {
    return this.store.keys(account);
  }
}
