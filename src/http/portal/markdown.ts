/**
 * Just enough Markdown for the project's own documents (the integration guide and the SDK's
 * README): headings with GitHub-style ids, fenced code, tables, lists whose items hold
 * paragraphs, code and nested lists, rules, paragraphs, and inline code, bold, emphasis and
 * links. HTML comments (the runnable-snippet markers) are dropped. Every piece of text is
 * escaped; http(s) and in-page links become anchors, and a relative link becomes one only
 * when the caller's `link` maps it to an address the server serves (else its label stays).
 */
import { escapeHtml, raw, type SafeHtml } from "../html.js";

export interface MarkdownOptions {
  /** The served address of a relative link target, or undefined to leave its label as text. */
  link?: (href: string) => string | undefined;
}

/** The id GitHub gives a heading: "## 7. Integrating a client" → "7-integrating-a-client". */
export function headingId(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .trim()
    .replace(/\s/g, "-");
}

function inline(text: string, opts: MarkdownOptions): string {
  // Code spans first, kept aside (as private-use placeholders), so that bold, emphasis and
  // links may wrap them.
  const codes: string[] = [];
  const held = text.replace(/`([^`]+)`/g, (_m, code: string) => {
    codes.push(`<code>${escapeHtml(code)}</code>`);
    return `\uE000${codes.length - 1}\uE000`;
  });
  return escapeHtml(held)
    .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[\s(])_([^_\s](?:[^_]*[^_\s])?)_(?=$|[\s).,;:!?])/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_m, label: string, href: string) => {
      if (/^(https?:\/\/|#)/.test(href)) return `<a href="${href}">${label}</a>`;
      const served = opts.link?.(href.replace(/&amp;/g, "&"));
      return served === undefined ? label : `<a href="${escapeHtml(served)}">${label}</a>`;
    })
    .replace(/\uE000(\d+)\uE000/g, (_m, n: string) => codes[Number(n)]!);
}

const cells = (line: string) =>
  line
    .trim()
    .replace(/^\||\|$/g, "")
    .split("|")
    .map((c) => c.trim());

const FENCE = /^\s{0,3}(`{3,}|~{3,})/;
const ITEM = /^(\s*)([-*]|\d+\.)(\s+)(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const leading = (line: string) => line.length - line.trimStart().length;

/** Strips up to `n` leading spaces. */
function dedent(line: string, n: number): string {
  return line.slice(Math.min(n, leading(line)));
}

/**
 * One list from line `start`: its items' lines (dedented to their content), the index after
 * it, whether it is ordered and its first number. An item runs on over blank lines while
 * what follows is indented to its content (a paragraph, code, a nested list).
 */
function readList(lines: string[], start: number) {
  const first = ITEM.exec(lines[start]!)!;
  const indent = first[1]!.length;
  const ordered = /\d/.test(first[2]!);
  const items: string[][] = [];
  let content = 0;
  let i = start;
  while (i < lines.length) {
    const line = lines[i]!;
    const m = ITEM.exec(line);
    if (m && m[1]!.length === indent && /\d/.test(m[2]!) === ordered) {
      content = indent + m[2]!.length + m[3]!.length;
      items.push([m[4]!]);
      i++;
      continue;
    }
    if (line.trim() === "") {
      let next = i + 1;
      while (next < lines.length && lines[next]!.trim() === "") next++;
      const after = lines[next];
      const sameList = after !== undefined && ITEM.exec(after)?.[1]?.length === indent;
      if (after === undefined || (leading(after) < content && !sameList)) break;
      items[items.length - 1]!.push("");
      i++;
      continue;
    }
    if (leading(line) > indent) {
      items[items.length - 1]!.push(dedent(line, content));
      i++;
      continue;
    }
    break;
  }
  return { items, next: i, ordered, startAt: ordered ? Number.parseInt(first[2]!, 10) : 1 };
}

function blocks(lines: string[], opts: MarkdownOptions): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    const fence = FENCE.exec(line);
    if (fence) {
      const indent = leading(line);
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i]!.trimStart().startsWith(fence[1]!); i++)
        code.push(dedent(lines[i]!, indent));
      i++;
      out.push(`<pre class="block"><code>${escapeHtml(code.join("\n"))}</code></pre>`);
      continue;
    }
    if (line.trimStart().startsWith("<!--")) {
      // A comment is for the document's source only (runnable-snippet markers).
      while (i < lines.length && !lines[i]!.includes("-->")) i++;
      i++;
      continue;
    }
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    if (heading) {
      const level = heading[1]!.length;
      out.push(
        `<h${level} id="${escapeHtml(headingId(heading[2]!))}">${inline(heading[2]!, opts)}</h${level}>`,
      );
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push("<hr>");
      i++;
      continue;
    }
    if (line.trim().startsWith("|")) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i]!.trim().startsWith("|"); i++) {
        if (!/^\s*\|?[\s:|-]+\|?\s*$/.test(lines[i]!)) rows.push(cells(lines[i]!));
      }
      const [head, ...body] = rows;
      out.push(
        `<div class="table-wrap"><table><thead><tr>${(head ?? []).map((c) => `<th scope="col">${inline(c, opts)}</th>`).join("")}</tr></thead><tbody>${body
          .map((r) => `<tr>${r.map((c) => `<td>${inline(c, opts)}</td>`).join("")}</tr>`)
          .join("")}</tbody></table></div>`,
      );
      continue;
    }
    if (ITEM.test(line)) {
      const list = readList(lines, i);
      i = list.next;
      const tag = list.ordered ? "ol" : "ul";
      const start = list.ordered && list.startAt !== 1 ? ` start="${list.startAt}"` : "";
      const items = list.items.map((item) => {
        const inner = blocks(item, opts);
        // A one-paragraph item stays tight, as in the source.
        const tight = inner.length === 1 && inner[0]!.startsWith("<p>");
        return `<li>${tight ? inner[0]!.slice(3, -4) : inner.join("\n")}</li>`;
      });
      out.push(`<${tag}${start}>${items.join("")}</${tag}>`);
      continue;
    }
    if (line.trim() === "") {
      i++;
      continue;
    }
    const para: string[] = [];
    for (
      ;
      i < lines.length &&
      lines[i]!.trim() !== "" &&
      !FENCE.test(lines[i]!) &&
      !RULE.test(lines[i]!) &&
      !/^(#{1,4}\s|\s*\||\s*<!--|\s*([-*]|\d+\.)\s)/.test(lines[i]!);
      i++
    )
      para.push(lines[i]!.trim());
    out.push(`<p>${inline(para.join(" "), opts)}</p>`);
  }
  return out;
}

export function markdownPage(source: string, opts: MarkdownOptions = {}): SafeHtml {
  return raw(blocks(source.replace(/\r\n/g, "\n").split("\n"), opts).join("\n"));
}
