/** Console log-in (an XMPP account holding the admin role, with its XMPP password) and log-out. */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import { csrfField, errorSummary, type FieldErrors, FORM_ERROR, input } from "../assets/components.js";
import { field, formBody, redirect, safeNext } from "../assets/respond.js";
import { html } from "../html.js";
import { CONSOLE, type ConsoleEnv, route } from "./env.js";

function loginForm(csrfToken: string, values: { username?: string; next?: string }, errors?: FieldErrors) {
  return html`<h1>Log in to the console</h1>
    <p>Use an account of this network that holds the admin role, with its chat password.</p>
    <form method="post" action="${CONSOLE}/login" class="stack" id="login-form" data-testid="console-login-form" novalidate>
      ${errorSummary(errors, { username: "Account", password: "Password" })}
      ${csrfField(csrfToken)}
      ${values.next ? html`<input type="hidden" name="next" value="${values.next}">` : ""}
      ${input({ name: "username", label: "Account", autocomplete: "username", required: true, value: values.username ?? "", errors, hint: "The name before the @ (e.g. alice), or the whole address on another domain this server serves" })}
      ${input({ name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true, errors })}
      <div class="actions"><button type="submit" data-testid="login-submit">Log in</button></div>
    </form>`;
}

export function registerLogin(app: FastifyInstance, env: ConsoleEnv): void {
  app.get<{ Querystring: { next?: string } }>(route(`${CONSOLE}/login`), async (request, reply) => {
    const session = await env.deps.sessions.ensure(request, reply);
    if (await env.deps.auth.adminOf(request)) return redirect(request, reply, CONSOLE);
    const next = safeNext(request.query.next, "", CONSOLE);
    return env.page(request, reply, { title: "Log in", body: loginForm(session.csrfToken, { next }) });
  });

  app.post(route(`${CONSOLE}/login`), async (request: FastifyRequest, reply: FastifyReply) => {
    const body = formBody(request);
    const username = field(body, "username");
    const password = typeof body.password === "string" ? body.password : "";
    const next = safeNext(field(body, "next"), CONSOLE, CONSOLE);
    const errors: FieldErrors = {};
    let status = 422;
    if (username === "") errors.username = "Enter the account name.";
    if (password === "") errors.password = "Enter the password.";
    if (Object.keys(errors).length === 0) {
      const result = await env.deps.auth.loginConsole(request, reply, username, password);
      if (result.ok) {
        return redirect(request, reply, next, {
          kind: "success",
          text: `Logged in as ${result.principal.name}.`,
        });
      }
      if (result.status === 429) {
        const seconds = result.retryAfterSeconds ?? 60;
        reply.header("retry-after", String(seconds));
        errors[FORM_ERROR] =
          `Too many failed attempts. Try again in ${count(Math.ceil(seconds / 60), "minute")}.`;
        const session = await env.deps.sessions.ensure(request, reply);
        return env.page(request, reply, {
          title: "Log in",
          status: 429,
          body: loginForm(session.csrfToken, { username, next }, errors),
        });
      }
      // One message for a wrong password, an unknown account or a missing role: nothing to probe.
      errors[FORM_ERROR] = "The account name or password is wrong, or the account may not use the console.";
      status = 401;
    }
    const session = await env.deps.sessions.ensure(request, reply);
    return env.page(request, reply, {
      title: "Log in",
      status,
      body: loginForm(session.csrfToken, { username, next }, errors),
    });
  });

  app.post(route(`${CONSOLE}/logout`), async (request, reply) => {
    await env.deps.sessions.end(request, reply);
    return reply.code(303).header("location", `${CONSOLE}/login`).send("");
  });
}
