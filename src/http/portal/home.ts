/** The portal's start page: an introduction when logged out; the publisher's overview when logged in. */

import type { FastifyInstance } from "fastify";
import { count } from "../../commands/plural.js";
import { emptyState, table } from "../assets/components.js";
import { html } from "../html.js";
import { applicationsTable } from "./applications.js";
import { appsOf } from "./apps.js";
import { PORTAL, type PortalEnv, route } from "./env.js";

export function registerHome(app: FastifyInstance, env: PortalEnv): void {
  const { programme } = env.deps;

  app.get(route(PORTAL), async (request, reply) => {
    const account = request.portalAccount;
    if (!account) {
      return env.page(request, reply, {
        title: "Licences for client apps",
        body: html`<h1>Licences for client apps</h1>
          <p>This network admits licensed client apps. Publishers apply for a licence here, then register their app's signing keys, follow how many people use each version, and receive the operators' notices.</p>
          <div class="actions">
            <a href="${PORTAL}/signup" class="button" data-testid="start-signup">Create a publisher account</a>
            <a href="${PORTAL}/login" class="button secondary">Log in</a>
          </div>`,
      });
    }
    const [applications, snapshot, notices] = await Promise.all([
      programme.applications.list({ accountId: account.id }),
      programme.registry.snapshot(),
      account.publisherId ? programme.notices.forPublisher(account.publisherId) : Promise.resolve([]),
    ]);
    const apps = appsOf(snapshot, account.publisherId);
    const waiting = notices.filter(
      ({ notice, recipient }) => notice.requiresAck && recipient.acknowledgedAt === undefined,
    );
    return env.page(request, reply, {
      title: "Overview",
      current: "home",
      body: html`<h1>Overview</h1>
        ${
          waiting.length > 0
            ? html`<div class="flash flash-warning" role="status" data-testid="notices-waiting">${count(waiting.length, "notice")} ${waiting.length === 1 ? "waits" : "wait"} for your acknowledgement. <a href="${PORTAL}/notices">Read them</a>.</div>`
            : ""
        }
        <h2>Your apps</h2>
        ${
          apps.length === 0
            ? emptyState(
                applications.length === 0
                  ? "No apps yet: apply for a licence to register one."
                  : "No apps yet: your app appears here once an application is approved.",
              )
            : table({
                caption: "Your apps",
                captionHidden: true,
                head: ["App", "Client id", "Platforms"],
                rows: apps.map((a) => [
                  html`<a href="${PORTAL}/apps/${encodeURIComponent(a.clientId)}" data-testid="app-link">${a.name}</a>`,
                  html`<code>${a.clientId}</code>`,
                  a.platforms.join(", "),
                ]),
                empty: "No apps yet.",
                testid: "apps-table",
              })
        }
        <h2>Your applications</h2>
        ${applicationsTable([...applications].reverse())}`,
    });
  });
}
