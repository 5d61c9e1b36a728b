/**
 * Small building blocks shared by the portal and the console pages: labelled form
 * fields with inline errors, an error summary, tables with an empty state, badges,
 * instants. Every input has a label; errors are tied to their input by
 * aria-describedby so screen readers announce them.
 */
import { html, type Renderable, type SafeHtml } from "../html.js";

/** Messages by field name; "_form" holds errors that belong to no single field. */
export type FieldErrors = Record<string, string>;

export const FORM_ERROR = "_form";

export function csrfField(token: string | undefined): SafeHtml {
  return token ? html`<input type="hidden" name="_csrf" value="${token}">` : html``;
}

interface BaseField {
  name: string;
  label: string;
  hint?: string | SafeHtml;
  errors?: FieldErrors;
  required?: boolean;
  /** id of the input; defaults to "f-<name>". */
  id?: string;
}

export interface InputField extends BaseField {
  type?: "text" | "email" | "password" | "url" | "number" | "search" | "datetime-local";
  value?: string | number;
  autocomplete?: string;
  placeholder?: string;
  min?: number;
  max?: number;
  maxlength?: number;
  /** Extra attributes already escaped (e.g. htmx triggers). */
  extra?: SafeHtml;
}

const idOf = (f: BaseField) => f.id ?? `f-${f.name}`;

function describedBy(f: BaseField): { attr: SafeHtml; hint: SafeHtml; error: SafeHtml } {
  const id = idOf(f);
  const error = f.errors?.[f.name];
  const ids = [f.hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return {
    attr: html`${ids ? html` aria-describedby="${ids}"` : ""}${error ? html` aria-invalid="true"` : ""}`,
    hint: f.hint ? html`<span class="hint" id="${id}-hint">${f.hint}</span>` : html``,
    error: error
      ? html`<span class="field-error" id="${id}-error" data-testid="error-${f.name}">${error}</span>`
      : html``,
  };
}

export function input(f: InputField): SafeHtml {
  const id = idOf(f);
  const d = describedBy(f);
  return html`<div class="field">
    <label for="${id}">${f.label}${f.required ? html` <span aria-hidden="true">*</span>` : ""}</label>
    ${d.hint}
    <input id="${id}" name="${f.name}" type="${f.type ?? "text"}"${
      f.value !== undefined ? html` value="${String(f.value)}"` : ""
    }${f.required ? html` required` : ""}${f.autocomplete ? html` autocomplete="${f.autocomplete}"` : ""}${
      f.placeholder ? html` placeholder="${f.placeholder}"` : ""
    }${f.min !== undefined ? html` min="${f.min}"` : ""}${f.max !== undefined ? html` max="${f.max}"` : ""}${
      f.maxlength !== undefined ? html` maxlength="${f.maxlength}"` : ""
    }${d.attr}${f.extra ?? ""}>
    ${d.error}
  </div>`;
}

export interface TextareaField extends BaseField {
  value?: string;
  rows?: number;
  maxlength?: number;
  extra?: SafeHtml;
}

export function textarea(f: TextareaField): SafeHtml {
  const id = idOf(f);
  const d = describedBy(f);
  return html`<div class="field">
    <label for="${id}">${f.label}${f.required ? html` <span aria-hidden="true">*</span>` : ""}</label>
    ${d.hint}
    <textarea id="${id}" name="${f.name}" rows="${f.rows ?? 5}"${f.required ? html` required` : ""}${
      f.maxlength !== undefined ? html` maxlength="${f.maxlength}"` : ""
    }${d.attr}${f.extra ?? ""}>${f.value ?? ""}</textarea>
    ${d.error}
  </div>`;
}

export interface Option {
  value: string;
  label: string;
}

export interface SelectField extends BaseField {
  options: readonly Option[];
  value?: string;
  extra?: SafeHtml;
}

export function select(f: SelectField): SafeHtml {
  const id = idOf(f);
  const d = describedBy(f);
  return html`<div class="field">
    <label for="${id}">${f.label}</label>
    ${d.hint}
    <select id="${id}" name="${f.name}"${f.required ? html` required` : ""}${d.attr}${f.extra ?? ""}>
      ${f.options.map(
        (o) =>
          html`<option value="${o.value}"${o.value === f.value ? html` selected` : ""}>${o.label}</option>`,
      )}
    </select>
    ${d.error}
  </div>`;
}

export interface ChoiceField extends BaseField {
  options: readonly Option[];
  /** Checked values. */
  values?: readonly string[];
  /** Several (checkboxes) or one (radio buttons). */
  multiple: boolean;
}

/** A group of checkboxes or radio buttons in a fieldset whose legend is the label. */
export function choices(f: ChoiceField): SafeHtml {
  const id = idOf(f);
  const d = describedBy(f);
  const type = f.multiple ? "checkbox" : "radio";
  return html`<fieldset id="${id}"${d.attr}>
    <legend>${f.label}${f.required ? html` <span aria-hidden="true">*</span>` : ""}</legend>
    ${d.hint}
    <div class="choices">
      ${f.options.map(
        (o) =>
          html`<label><input type="${type}" name="${f.name}" value="${o.value}"${
            f.values?.includes(o.value) ? html` checked` : ""
          }> ${o.label}</label>`,
      )}
    </div>
    ${d.error}
  </fieldset>`;
}

export interface CheckboxField extends BaseField {
  checked?: boolean;
  value?: string;
}

export function checkbox(f: CheckboxField): SafeHtml {
  const id = idOf(f);
  const d = describedBy(f);
  return html`<div class="field">
    <label class="check" for="${id}"><input type="checkbox" id="${id}" name="${f.name}" value="${
      f.value ?? "yes"
    }"${f.checked ? html` checked` : ""}${f.required ? html` required` : ""}${d.attr}> ${f.label}</label>
    ${d.hint}
    ${d.error}
  </div>`;
}

/**
 * The errors of a form, first thing inside it: announced at once (role=alert), each linked
 * to its field so keyboard users can jump there.
 */
export function errorSummary(errors: FieldErrors | undefined, labels: Record<string, string> = {}): SafeHtml {
  if (!errors || Object.keys(errors).length === 0) return html``;
  const entries = Object.entries(errors);
  return html`<div class="flash flash-error" role="alert" data-testid="form-errors">
    <p><strong>${entries.length === 1 ? "Please correct this:" : "Please correct these:"}</strong></p>
    <ul>
      ${entries.map(([name, message]) =>
        name === FORM_ERROR
          ? html`<li>${message}</li>`
          : html`<li><a href="#f-${name}">${
              labels[name] && !message.startsWith(labels[name]) ? `${labels[name]}: ` : ""
            }${message}</a></li>`,
      )}
    </ul>
  </div>`;
}

export function emptyState(message: string, action?: Renderable, testid = "empty"): SafeHtml {
  return html`<div class="empty" data-testid="${testid}"><p>${message}</p>${action ?? ""}</div>`;
}

export interface TableOptions {
  /** Visible caption, or a hidden one when `captionHidden`. */
  caption: string;
  captionHidden?: boolean;
  head: readonly (string | { label: string; numeric?: boolean })[];
  rows: readonly (readonly Renderable[])[];
  /** Shown instead of the table when there are no rows. */
  empty: string;
  emptyAction?: Renderable;
  testid?: string;
  /** Which columns are numeric (right-aligned), by index. */
  numeric?: readonly number[];
}

export function table(t: TableOptions): SafeHtml {
  if (t.rows.length === 0)
    return emptyState(t.empty, t.emptyAction, t.testid ? `${t.testid}-empty` : "empty");
  const numeric = new Set(t.numeric ?? []);
  const labels = t.head.map((h) => (typeof h === "string" ? h : h.label));
  // On narrow screens (style.css) each row becomes a block whose cells show their column's name.
  return html`<div class="table-wrap stacked"><table${t.testid ? html` data-testid="${t.testid}"` : ""}>
    <caption${t.captionHidden ? html` class="visually-hidden"` : ""}>${t.caption}</caption>
    <thead><tr>${t.head.map((h, i) => {
      const label = typeof h === "string" ? h : h.label;
      return html`<th scope="col"${numeric.has(i) ? html` class="num"` : ""}>${label}</th>`;
    })}</tr></thead>
    <tbody>
      ${t.rows.map(
        (r) =>
          html`<tr>${r.map(
            (c, i) =>
              html`<td data-label="${labels[i] ?? ""}"${numeric.has(i) ? html` class="num"` : ""}>${c}</td>`,
          )}</tr>`,
      )}
    </tbody>
  </table></div>`;
}

export type Tone = "ok" | "bad" | "warn" | "info";

export function badge(text: string, tone: Tone): SafeHtml {
  return html`<span class="badge badge-${tone}">${text}</span>`;
}

/** An instant as UTC text in a <time> element (app.js may show it in the reader's zone). */
export function instant(at: number | undefined | null, missing = "—"): SafeHtml {
  if (at === undefined || at === null || !Number.isFinite(at))
    return html`<span class="muted">${missing}</span>`;
  const iso = new Date(at).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace("T", " ")} UTC</time>`;
}

export function percent(share: number | null | undefined): string {
  if (share === null || share === undefined || !Number.isFinite(share)) return "—";
  return `${(share * 100).toFixed(1)} %`;
}

/** A definition list of facts: label → value. */
export function facts(rows: readonly [string, Renderable][], testid?: string): SafeHtml {
  return html`<dl class="facts"${testid ? html` data-testid="${testid}"` : ""}>${rows.map(
    ([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`,
  )}</dl>`;
}

/**
 * A one-button form for an action (suspend, revoke, kick…), with the CSRF token and an
 * optional confirmation question (asked by app.js; the server does not rely on it).
 */
export function actionButton(opts: {
  action: string;
  label: string;
  csrfToken?: string;
  confirm?: string;
  danger?: boolean;
  testid?: string;
  fields?: Record<string, string>;
}): SafeHtml {
  return html`<form method="post" action="${opts.action}" class="inline-form"${
    opts.confirm ? html` data-confirm="${opts.confirm}"` : ""
  }>
    ${csrfField(opts.csrfToken)}
    ${Object.entries(opts.fields ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
    <button type="submit"${opts.danger ? html` class="danger"` : html` class="secondary"`}${
      opts.testid ? html` data-testid="${opts.testid}"` : ""
    }>${opts.label}</button>
  </form>`;
}

/**
 * A GET search form that htmx submits as you type, replacing only the results (picked out
 * of the full page by id) and keeping the URL shareable; without JavaScript it is a plain form.
 */
export function searchForm(opts: {
  action: string;
  resultsId: string;
  fields: Renderable;
  label: string;
  testid?: string;
}): SafeHtml {
  return html`<form role="search" aria-label="${opts.label}" method="get" action="${opts.action}" class="search"
      hx-get="${opts.action}" hx-target="#${opts.resultsId}" hx-select="#${opts.resultsId}" hx-swap="outerHTML"
      hx-trigger="input changed delay:300ms, change, submit" hx-push-url="true"${
        opts.testid ? html` data-testid="${opts.testid}"` : ""
      }>
    ${opts.fields}
    <button type="submit" class="secondary">Search</button>
  </form>`;
}

/**
 * A form that htmx posts in place: on errors the server answers with the page, and htmx
 * swaps in just this form (picked out by id) with its messages; on success the server
 * answers with HX-Redirect. Without JavaScript it is an ordinary form post.
 */
export function htmxFormAttrs(id: string, action: string): SafeHtml {
  return html`id="${id}" method="post" action="${action}" hx-post="${action}" hx-target="this" hx-select="#${id}" hx-swap="outerHTML"`;
}

/**
 * Messages of services written to follow a field name ("is not a valid email address",
 * "must not be empty") as sentences with the field's label; others get a capital letter.
 */
export function humanize(errors: FieldErrors, labels: Record<string, string>): FieldErrors {
  const out: FieldErrors = {};
  for (const [name, message] of Object.entries(errors)) {
    const label = labels[name];
    const text = message.trim();
    const sentence =
      label && /^(is|are|must|contains|should|has|have)\b/.test(text)
        ? `${label} ${text}`
        : text.charAt(0).toUpperCase() + text.slice(1);
    out[name] = /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
  }
  return out;
}
