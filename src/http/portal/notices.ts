/**
 * Notices from the network's operators to the publisher: the list (unread and
 * unacknowledged first to the eye), one notice (opening it records that it was read),
 * and acknowledging it. The programme's Notices service keeps the per-publisher record.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Notice, NoticeRecipient } from "../../programme/model.js";
import { badge, csrfField, emptyState, instant, table } from "../assets/components.js";
import { redirect } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { ProblemError } from "../problem.js";
import { PORTAL, type PortalEnv, route } from "./env.js";

const noticePath = (id: string) => `${PORTAL}/notices/${encodeURIComponent(id)}`;

export function noticeState(n: Notice, r: NoticeRecipient): SafeHtml {
  if (r.acknowledgedAt !== undefined) return badge("acknowledged", "ok");
  if (n.requiresAck)
    return badge(r.readAt === undefined ? "new: please acknowledge" : "please acknowledge", "warn");
  return r.readAt === undefined ? badge("new", "info") : badge("read", "ok");
}

export function registerNotices(app: FastifyInstance, env: PortalEnv): void {
  const { programme } = env.deps;

  const publisherOf = (request: FastifyRequest) => env.account(request).publisherId;

  const inbox = async (request: FastifyRequest) => {
    const publisherId = publisherOf(request);
    return publisherId === undefined ? [] : programme.notices.forPublisher(publisherId);
  };

  app.get(route(`${PORTAL}/notices`), async (request, reply) => {
    const items = await inbox(request);
    return env.page(request, reply, {
      title: "Notices",
      current: "notices",
      body: html`<h1>Notices</h1>
        ${
          publisherOf(request) === undefined
            ? emptyState(
                "No notices: notices go to publishers, which your account becomes once an application is approved.",
              )
            : table({
                caption: "Notices from the network's operators, newest first",
                captionHidden: true,
                head: ["Received", "Subject", "State"],
                rows: items.map(({ notice, recipient }) => [
                  instant(notice.createdAt),
                  html`<a href="${noticePath(notice.id)}" data-testid="notice-link">${notice.subject}</a>`,
                  noticeState(notice, recipient),
                ]),
                empty: "No notices yet.",
                testid: "notices-table",
              })
        }`,
    });
  });

  /** The notice and this publisher's record of it; 404 when it was not addressed to them. */
  const mine = async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const publisherId = publisherOf(request);
    const detail = publisherId === undefined ? undefined : await programme.notices.get(request.params.id);
    const recipient = detail?.recipients.find((r) => r.publisherId === publisherId);
    if (!detail || !recipient || publisherId === undefined) {
      throw new ProblemError(404, "not-found", "There is no such notice for your account.");
    }
    return { notice: detail.notice, recipient, publisherId };
  };

  app.get<{ Params: { id: string } }>(route(`${PORTAL}/notices/:id`), async (request, reply) => {
    const { notice, publisherId } = await mine(request);
    const recipient = await programme.notices.markRead(notice.id, publisherId);
    return env.page(request, reply, {
      title: `Notice: ${notice.subject}`,
      current: "notices",
      body: html`<article aria-labelledby="notice-title">
        <h1 id="notice-title" data-testid="notice-subject">${notice.subject}</h1>
        <p class="muted">From the network's operators, ${instant(notice.createdAt)}. ${noticeState(notice, recipient)}</p>
        <div class="notice-body card" data-testid="notice-body">${notice.body}</div>
        ${
          recipient.acknowledgedAt !== undefined
            ? html`<p data-testid="acknowledged">You acknowledged this notice on ${instant(recipient.acknowledgedAt)}.</p>`
            : notice.requiresAck
              ? html`<form method="post" action="${noticePath(notice.id)}/ack" class="stack">
                  ${csrfField(request.session?.csrfToken)}
                  <p>The operators ask you to confirm that you have read and understood this notice.</p>
                  <div class="actions"><button type="submit" data-testid="acknowledge">I have read and understood this notice</button></div>
                </form>`
              : html`<p class="muted">For your information; no acknowledgement is needed.</p>`
        }
      </article>`,
    });
  });

  app.post<{ Params: { id: string } }>(route(`${PORTAL}/notices/:id/ack`), async (request, reply) => {
    const { notice, publisherId } = await mine(request);
    await programme.notices.acknowledge(notice.id, publisherId, `portal:${env.account(request).id}`);
    return redirect(request, reply, noticePath(notice.id), {
      kind: "success",
      text: "Thank you: your acknowledgement has been recorded.",
    });
  });
}
