/**
 * The outbox (`mail list`): what waits and what went, with the confirmation links of
 * publishers who have not confirmed their address yet — the operator's way to pass a link
 * on when no SMTP relay is configured or a mail went astray — and a resend button per mail
 * (`mail resend`). Without a relay the page says so first.
 */
import type { FastifyInstance } from "fastify";
import { count } from "../../commands/plural.js";
import type { PendingConfirmation } from "../../programme/commands.js";
import type { ListedMail, RelayState } from "../../programme/mail-commands.js";
import type { MailStatus, PortalAccountView } from "../../programme/model.js";
import { actionButton, badge, emptyState, instant, type Tone, table } from "../assets/components.js";
import { html, type SafeHtml } from "../html.js";
import { act } from "./actions.js";
import { CONSOLE, type ConsoleEnv, route } from "./env.js";

export const MAIL_PATH = `${CONSOLE}/mail`;

const TONES: Record<MailStatus, Tone> = { queued: "info", sending: "info", sent: "ok", bounced: "bad" };

/** The warning shown on the dashboard and the outbox page while mails cannot leave. */
export function noRelayWarning(relay: RelayState): SafeHtml {
  if (relay.configured) return html``;
  return html`<div class="flash flash-warning" role="status" data-testid="no-relay">
    <p><strong>No SMTP relay is configured</strong> (<code>mail.smtp.host</code>): mails to publishers wait in the
    <a href="${MAIL_PATH}">outbox</a>. Pass confirmation links on from there, or configure a relay.</p>
  </div>`;
}

function linkCell(m: ListedMail): SafeHtml | string {
  if (!m.link) return "—";
  const what = m.link.purpose === "verify" ? "confirmation" : "reset";
  return m.link.valid
    ? html`<a href="${m.link.url}" class="mono break" data-testid="mail-link">${what} link</a>`
    : html`<span class="muted">${what} link used, replaced or expired</span>`;
}

type Unconfirmed = PortalAccountView & { confirmation?: PendingConfirmation };

function confirmations(accounts: Unconfirmed[], csrf: string | undefined): SafeHtml {
  return html`<section aria-labelledby="h-confirmations">
    <h2 id="h-confirmations">Publishers waiting to confirm their address</h2>
    <p class="muted">Give a publisher their link yourself when the mail cannot reach them. A link works once and expires after 48 hours; "New link" replaces it (and mails the new one).</p>
    ${table({
      caption: "Unconfirmed portal accounts",
      captionHidden: true,
      head: ["Address", "Signed up", "Confirmation link", "Action"],
      rows: accounts.map((a) => {
        const c = a.confirmation;
        const valid = c?.link?.valid === true;
        return [
          a.email,
          instant(a.createdAt),
          valid
            ? html`<code class="break" data-testid="confirmation-link">${c!.link!.url}</code>`
            : html`<span class="muted">${c ? "expired or used" : "no mail found"}</span>`,
          c
            ? actionButton({
                action: `${MAIL_PATH}/${c.mailId}/resend`,
                label: valid ? "Send again" : "New link",
                ...(csrf ? { csrfToken: csrf } : {}),
                testid: `resend-confirmation-${a.id}`,
              })
            : "—",
        ];
      }),
      empty: "Every portal account has confirmed its address.",
      testid: "confirmations-table",
    })}
  </section>`;
}

export function registerMail(app: FastifyInstance, env: ConsoleEnv): void {
  app.get(route(MAIL_PATH), async (request, reply) => {
    const [list, users] = await Promise.all([
      env.data<{ relay: RelayState; counts: Record<MailStatus, number>; mails: ListedMail[] }>(
        request,
        "mail list",
        {
          limit: "200",
        },
      ),
      env.data<{ accounts: Unconfirmed[] }>(request, "portal-user list", { unconfirmed: "true" }),
    ]);
    const csrf = request.session?.csrfToken;
    const { counts } = list;
    return env.page(request, reply, {
      title: "Mail",
      current: "mail",
      body: html`<h1>Mail</h1>
        ${noRelayWarning(list.relay)}
        <p data-testid="mail-counts">${count(counts.queued + counts.sending, "mail")} waiting, ${count(counts.sent, "mail")} sent, ${count(counts.bounced, "bounce")}${
          list.relay.configured ? html` · relay <code>${list.relay.host ?? ""}</code>` : ""
        }.</p>
        ${confirmations(users.accounts, csrf)}
        <section aria-labelledby="h-outbox">
          <h2 id="h-outbox">Outbox, newest first</h2>
          ${
            list.mails.length === 0
              ? emptyState("No mail yet.")
              : table({
                  caption: "Mails in the outbox",
                  captionHidden: true,
                  head: ["Queued", "To", "Subject", "Status", "Link", "Action"],
                  rows: list.mails.map((m) => [
                    instant(m.createdAt),
                    html`<span class="break">${m.to}</span>`,
                    html`${m.subject}${
                      m.lastError
                        ? html`<br><span class="muted">${count(m.attempts, "attempt")}: ${m.lastError}</span>`
                        : ""
                    }`,
                    badge(m.status, TONES[m.status]),
                    linkCell(m),
                    actionButton({
                      action: `${MAIL_PATH}/${m.id}/resend`,
                      label: m.status === "queued" || m.status === "sending" ? "Send now" : "Send again",
                      ...(csrf ? { csrfToken: csrf } : {}),
                      testid: `resend-${m.id}`,
                    }),
                  ]),
                  empty: "No mail yet.",
                  testid: "outbox-table",
                })
          }
        </section>`,
    });
  });

  app.post<{ Params: { id: string } }>(route(`${MAIL_PATH}/:id/resend`), async (request, reply) =>
    act(env, request, reply, {
      command: "mail resend",
      input: { id: request.params.id },
      back: MAIL_PATH,
      success: (result) => `${result.message.split("\n")[0]}.`,
    }),
  );
}
