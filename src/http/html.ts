/**
 * A tiny HTML template helper: `html\`<p>${name}</p>\`` escapes every interpolated
 * value unless it is already SafeHtml (the result of another `html` template or of
 * `raw()`), so markup built from stored data cannot inject elements or attributes.
 * Arrays are rendered item by item; null, undefined, false and true render as
 * nothing, so `${cond && html\`…\`}` works.
 */

/** Markup that is already safe to send: never escaped again. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type Renderable =
  | SafeHtml
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | readonly Renderable[];

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for element content and for quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Marks trusted markup (constants written in this code base), never user data. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

function render(value: Renderable): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === null || value === undefined || typeof value === "boolean") return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Renders items with a separator between them. */
export function join(items: readonly Renderable[], separator: Renderable = ""): SafeHtml {
  return new SafeHtml(items.map(render).join(render(separator)));
}

/** Renders a complete document (the layout) as a string for a reply. */
export function documentString(body: SafeHtml): string {
  return `<!doctype html>\n${body.value}`;
}
