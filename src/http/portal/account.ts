/** The signed-in publisher's account page: who they are, and changing the password. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ValidationError } from "../../programme/validation.js";
import { csrfField, errorSummary, type FieldErrors } from "../assets/components.js";
import { formBody, redirect } from "../assets/respond.js";
import { html } from "../html.js";
import { LABELS, password, refusal } from "./auth.js";
import { PORTAL, type PortalEnv, route } from "./env.js";

export function registerAccount(app: FastifyInstance, env: PortalEnv): void {
  const { programme, sessions } = env.deps;

  const accountPage = (request: FastifyRequest, errors?: FieldErrors) => {
    const a = env.account(request);
    return html`<h1>Your account</h1>
      <p>Logged in as <strong data-testid="account-email">${a.email}</strong>${a.publisherId ? html` for publisher <span class="mono">${a.publisherId}</span>` : ""}.</p>
      <form method="post" action="${PORTAL}/account/password" class="stack" id="password-form" novalidate>
        <h2>Change your password</h2>
        ${errorSummary(errors, LABELS)}
        ${csrfField(request.session?.csrfToken)}
        ${password("currentPassword", LABELS.currentPassword, "current-password", errors)}
        ${password("password", "New password", "new-password", errors, "At least 10 characters.")}
        ${password("confirm", LABELS.confirm, "new-password", errors)}
        <div class="actions"><button type="submit" data-testid="change-password-submit">Change the password</button></div>
      </form>`;
  };

  app.get(route(`${PORTAL}/account`), async (request, reply) =>
    env.page(request, reply, { title: "Your account", current: "account", body: accountPage(request) }),
  );

  app.post(route(`${PORTAL}/account/password`), async (request, reply) => {
    const body = formBody(request);
    const account = env.account(request);
    const pw = typeof body.password === "string" ? body.password : "";
    try {
      if (pw !== body.confirm) throw new ValidationError({ confirm: "The two passwords differ." });
      await programme.accounts.changePassword(
        account.id,
        typeof body.currentPassword === "string" ? body.currentPassword : "",
        pw,
      );
      // Every session of the account ends (others may be an intruder's); this browser starts a new one.
      await sessions.endFor({ kind: "portal", id: account.id });
      await sessions.start(request, reply, { kind: "portal", id: account.id });
      return redirect(request, reply, `${PORTAL}/account`, {
        kind: "success",
        text: "Your password has been changed.",
      });
    } catch (err) {
      const errors = refusal(err);
      if (!errors) throw err;
      return env.page(request, reply, {
        title: "Your account",
        current: "account",
        status: 422,
        body: accountPage(request, errors),
      });
    }
  });
}
