/** The audit log (`audit list`): every change, who made it and when, newest first, with filters. */
import type { FastifyInstance } from "fastify";
import { auditValueText } from "../../core/audit.js";
import type { ArchiveEntry } from "../../core/storage/types.js";
import type { AuditRecord } from "../../licensing/index.js";
import { input, instant, searchForm, table } from "../assets/components.js";
import { html, type SafeHtml } from "../html.js";
import { compact } from "./commands.js";
import { CONSOLE, type ConsoleEnv, route, utcInstant } from "./env.js";

const PATH = `${CONSOLE}/audit`;

/** The fields a change touched, each with its value before and after. */
function change(record: AuditRecord): SafeHtml {
  if (record.before === undefined && record.after === undefined) return html`<span class="muted">—</span>`;
  const before = (record.before ?? {}) as Record<string, unknown>;
  const after = (record.after ?? {}) as Record<string, unknown>;
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  const keys =
    isObject(record.before) || isObject(record.after)
      ? [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
          (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
        )
      : [];

  return html`<details><summary>${keys.length > 0 ? keys.join(", ") : "details"}</summary>
    ${
      keys.length > 0
        ? html`<ul>${keys.map((k) => html`<li><code>${k}</code>: ${auditValueText(k, before[k])} → ${auditValueText(k, after[k])}</li>`)}</ul>`
        : html`<pre class="block">before: ${auditValueText("before", record.before)}
after: ${auditValueText("after", record.after)}</pre>`
    }
  </details>`;
}

export function registerAudit(app: FastifyInstance, env: ConsoleEnv): void {
  app.get<{
    Querystring: { kind?: string; subject?: string; actor?: string; since?: string; limit?: string };
  }>(route(PATH), async (request, reply) => {
    const q = request.query;
    const kind = (q.kind ?? "").trim();
    const subject = (q.subject ?? "").trim();
    const actor = (q.actor ?? "").trim();
    const since = (q.since ?? "").trim();
    const limit = q.limit && /^\d+$/.test(q.limit) ? q.limit : "200";
    const { entries } = await env.data<{ entries: ArchiveEntry<AuditRecord>[] }>(
      request,
      "audit list",
      compact({ kind, subject, since: since ? utcInstant(since) : "", limit }),
    );
    const shown = entries
      .filter((e) => actor === "" || e.data.actor.toLowerCase().includes(actor.toLowerCase()))
      .reverse();
    return env.page(request, reply, {
      title: "Audit log",
      current: "audit",
      body: html`<h1>Audit log</h1>
          ${searchForm({
            action: PATH,
            resultsId: "audit-results",
            label: "Filter the audit log",
            testid: "audit-search",
            fields: html`${input({ name: "kind", label: "Kind (e.g. licence.revoke, or licence. for all)", value: kind })}
              ${input({ name: "subject", label: "Subject (e.g. policy, licence:lic_…)", value: subject })}
              ${input({ name: "actor", label: "Actor contains", value: actor })}
              ${input({ name: "since", label: "Since (UTC)", type: "datetime-local", value: since })}`,
          })}
          <div id="audit-results">
            ${table({
              caption: "Changes, newest first",
              captionHidden: true,
              head: ["When", "Kind", "Subject", "Who", "Change"],
              rows: shown.map((e) => [
                instant(e.at),
                html`<code>${e.kind}</code>`,
                e.data.subject,
                e.data.actor,
                change(e.data),
              ]),
              empty:
                kind || subject || actor || since
                  ? "No entry matches these filters."
                  : "No changes recorded yet.",
              testid: "audit-table",
            })}
          </div>`,
    });
  });
}
