/**
 * Portal accounts: sign up (a confirmation link is mailed), confirm the address, log in and
 * out, reset a forgotten password by mail. Answers never tell whether
 * an address has an account. All of it is the programme's PortalAccounts service.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { CommandError, commandErrorOf } from "../../core/commands.js";
import type { LoginResult } from "../../programme/portal-accounts.js";
import { RateLimited } from "../../programme/rate-limits.js";
import { fieldsOf, ValidationError } from "../../programme/validation.js";
import {
  csrfField,
  errorSummary,
  type FieldErrors,
  FORM_ERROR,
  humanize,
  input,
} from "../assets/components.js";
import { field, formBody, redirect, safeNext } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { PORTAL, type PortalEnv, route } from "./env.js";

export const LABELS = {
  email: "Email address",
  password: "Password",
  confirm: "Password again",
  currentPassword: "Current password",
};

/** Field messages of a refusal by the accounts service, or undefined for a bug. */
export function refusal(err: unknown): FieldErrors | undefined {
  const refused = commandErrorOf(err);
  if (!refused) return undefined;
  return humanize(fieldsOf(err) ?? { [FORM_ERROR]: refused.message }, LABELS);
}

export const password = (
  name: string,
  label: string,
  autocomplete: string,
  errors?: FieldErrors,
  hint?: string,
) =>
  input({ name, label, type: "password", autocomplete, required: true, errors, ...(hint ? { hint } : {}) });

function signupForm(csrf: string, email: string, errors?: FieldErrors): SafeHtml {
  return html`<h1>Create a publisher account</h1>
    <p>Publishers of client apps apply here for a licence to connect to this network.</p>
    <form method="post" action="${PORTAL}/signup" class="stack" id="signup-form" data-testid="signup-form" novalidate>
      ${errorSummary(errors, LABELS)}
      ${csrfField(csrf)}
      ${input({ name: "email", label: LABELS.email, type: "email", autocomplete: "email", required: true, value: email, errors, hint: "We send a link to confirm it." })}
      ${password("password", LABELS.password, "new-password", errors, "At least 10 characters.")}
      ${password("confirm", LABELS.confirm, "new-password", errors)}
      <div class="actions"><button type="submit" data-testid="signup-submit">Sign up</button>
        <a href="${PORTAL}/login">I already have an account</a></div>
    </form>`;
}

function loginForm(
  csrf: string,
  email: string,
  next: string,
  errors?: FieldErrors,
  extra?: SafeHtml,
): SafeHtml {
  return html`<h1>Log in</h1>
    <form method="post" action="${PORTAL}/login" class="stack" id="login-form" data-testid="portal-login-form" novalidate>
      ${errorSummary(errors, LABELS)}
      ${extra ?? ""}
      ${csrfField(csrf)}
      ${next ? html`<input type="hidden" name="next" value="${next}">` : ""}
      ${input({ name: "email", label: LABELS.email, type: "email", autocomplete: "username", required: true, value: email, errors })}
      ${password("password", LABELS.password, "current-password", errors)}
      <div class="actions"><button type="submit" data-testid="login-submit">Log in</button>
        <a href="${PORTAL}/reset">Forgot your password?</a>
        <a href="${PORTAL}/signup">Create an account</a></div>
    </form>`;
}

function resendForm(csrf: string, email: string, errors?: FieldErrors): SafeHtml {
  return html`<form method="post" action="${PORTAL}/verify/resend" class="stack" id="resend-form" novalidate>
    <h2>Send a new confirmation link</h2>
    ${errorSummary(errors, LABELS)}
    ${csrfField(csrf)}
    ${input({ name: "email", id: "f-resend-email", label: LABELS.email, type: "email", autocomplete: "email", required: true, value: email, errors })}
    <div class="actions"><button type="submit" class="secondary" data-testid="resend-submit">Send the link again</button></div>
  </form>`;
}

function checkMail(email: string, what: string): SafeHtml {
  return html`<h1>Check your mail</h1>
    <p data-testid="check-mail">If <strong>${email}</strong> ${what}, a message with a link is on its way. The link works once and expires.</p>
    <p>Nothing arrived after a few minutes? Check your spam folder, or <a href="${PORTAL}/signup">try again</a>.</p>`;
}

export function registerAuth(app: FastifyInstance, env: PortalEnv): void {
  const { programme, sessions, logins, loginRefused } = env.deps;
  const who = (request: FastifyRequest) => ({ address: request.ip });

  app.get(route(`${PORTAL}/signup`), async (request, reply) => {
    const session = await sessions.ensure(request, reply);
    if (request.portalAccount) return redirect(request, reply, PORTAL);
    return env.page(request, reply, {
      title: "Sign up",
      current: "signup",
      body: signupForm(session.csrfToken, ""),
    });
  });

  app.post(route(`${PORTAL}/signup`), async (request, reply) => {
    const body = formBody(request);
    const email = field(body, "email");
    const pw = typeof body.password === "string" ? body.password : "";
    const errors: FieldErrors = {};
    if (email === "") errors.email = "Enter your email address.";
    if (pw === "") errors.password = "Choose a password.";
    else if (pw !== body.confirm) errors.confirm = "The two passwords differ.";
    if (Object.keys(errors).length === 0) {
      try {
        await programme.accounts.signUp({ email, password: pw }, who(request));
        return env.page(request, reply, {
          title: "Check your mail",
          body: checkMail(email, "can be used for an account"),
        });
      } catch (err) {
        const e = refusal(err);
        if (!e) throw err;
        Object.assign(errors, e);
      }
    }
    const session = await sessions.ensure(request, reply);
    return env.page(request, reply, {
      title: "Sign up",
      current: "signup",
      status: 422,
      body: signupForm(session.csrfToken, email, errors),
    });
  });

  app.get<{ Querystring: { token?: string } }>(route(`${PORTAL}/verify`), async (request, reply) => {
    const session = await sessions.ensure(request, reply);
    const token = request.query.token ?? "";
    try {
      if (token === "") throw new CommandError("this link is incomplete", 400);
      const account = await programme.accounts.verifyEmail(token);
      return redirect(request, reply, `${PORTAL}/login?email=${encodeURIComponent(account.email)}`, {
        kind: "success",
        text: "Your email address is confirmed. You can log in now.",
      });
    } catch (err) {
      if (!commandErrorOf(err)) throw err;
      return env.page(request, reply, {
        title: "Link not valid",
        status: 400,
        body: html`<h1>This link is not valid</h1>
          <p data-testid="error-message">It may have been used already or have expired. Ask for a new one:</p>
          ${resendForm(session.csrfToken, "")}`,
      });
    }
  });

  app.post(route(`${PORTAL}/verify/resend`), async (request, reply) => {
    const email = field(formBody(request), "email");
    try {
      if (email === "") throw new ValidationError({ email: "Enter your email address." });
      await programme.accounts.resendVerification(email, who(request));
      return env.page(request, reply, {
        title: "Check your mail",
        body: checkMail(email, "has an unconfirmed account"),
      });
    } catch (err) {
      const errors = refusal(err);
      if (!errors) throw err;
      const session = await sessions.ensure(request, reply);
      return env.page(request, reply, {
        title: "Send the link again",
        status: 422,
        body: resendForm(session.csrfToken, email, errors),
      });
    }
  });

  app.get<{ Querystring: { next?: string; email?: string } }>(
    route(`${PORTAL}/login`),
    async (request, reply) => {
      const session = await sessions.ensure(request, reply);
      if (request.portalAccount) return redirect(request, reply, PORTAL);
      const next = safeNext(request.query.next, "", PORTAL);
      return env.page(request, reply, {
        title: "Log in",
        current: "login",
        body: loginForm(session.csrfToken, request.query.email ?? "", next),
      });
    },
  );

  app.post(route(`${PORTAL}/login`), async (request: FastifyRequest, reply: FastifyReply) => {
    const body = formBody(request);
    const email = field(body, "email");
    const pw = typeof body.password === "string" ? body.password : "";
    const next = safeNext(field(body, "next"), PORTAL, PORTAL);
    const errors: FieldErrors = {};
    let status = 422;
    let extra: SafeHtml | undefined;
    if (email === "") errors.email = "Enter your email address.";
    if (pw === "") errors.password = "Enter your password.";
    if (Object.keys(errors).length === 0) {
      const address = request.ip;
      const wait = logins.retryAfterMs(address, undefined);
      if (wait > 0) {
        loginRefused();
        throw new RateLimited("login", wait);
      }
      let result: LoginResult;
      try {
        result = await programme.accounts.login(email, pw, who(request));
      } catch (err) {
        if (err instanceof RateLimited) loginRefused();
        throw err;
      }
      if (result.ok) {
        await sessions.start(request, reply, { kind: "portal", id: result.account.id });
        return redirect(request, reply, next, { kind: "success", text: "You are logged in." });
      }
      loginRefused();
      // A wrong password or an unknown address counts against the address, whatever the account.
      if (result.reason === "invalid") logins.failed(address, undefined);
      status = 401;
      if (result.reason === "unverified") {
        errors[FORM_ERROR] = "Please confirm your email address first: open the link we mailed you.";
        extra = html`<p><a href="#resend-form">Send the link again</a></p>`;
      } else if (result.reason === "disabled") {
        errors[FORM_ERROR] = "This account is disabled. Contact the network's operators.";
        status = 403;
      } else {
        errors[FORM_ERROR] = "The email address or the password is wrong.";
      }
    }
    const session = await sessions.ensure(request, reply);
    return env.page(request, reply, {
      title: "Log in",
      current: "login",
      status,
      body: html`${loginForm(session.csrfToken, email, next, errors, extra)}${
        extra ? resendForm(session.csrfToken, email) : ""
      }`,
    });
  });

  app.post(route(`${PORTAL}/logout`), async (request, reply) => {
    await sessions.end(request, reply);
    return reply.code(303).header("location", `${PORTAL}/login`).send("");
  });

  // Reset: without a token, ask for the address; with one, choose the new password.
  const resetRequestPage = (
    csrf: string,
    email: string,
    errors?: FieldErrors,
  ) => html`<h1>Reset your password</h1>
    <form method="post" action="${PORTAL}/reset" class="stack" id="reset-form" data-testid="reset-request-form" novalidate>
      ${errorSummary(errors, LABELS)}
      ${csrfField(csrf)}
      ${input({ name: "email", label: LABELS.email, type: "email", autocomplete: "email", required: true, value: email, errors, hint: "We mail you a link to choose a new password." })}
      <div class="actions"><button type="submit" data-testid="reset-request-submit">Send the link</button></div>
    </form>`;
  const resetPasswordPage = (
    csrf: string,
    token: string,
    errors?: FieldErrors,
  ) => html`<h1>Choose a new password</h1>
    <form method="post" action="${PORTAL}/reset" class="stack" id="reset-form" data-testid="reset-password-form" novalidate>
      ${errorSummary(errors, LABELS)}
      ${csrfField(csrf)}
      <input type="hidden" name="token" value="${token}">
      ${password("password", "New password", "new-password", errors, "At least 10 characters.")}
      ${password("confirm", LABELS.confirm, "new-password", errors)}
      <div class="actions"><button type="submit" data-testid="reset-password-submit">Set the password</button></div>
    </form>`;

  app.get<{ Querystring: { token?: string } }>(route(`${PORTAL}/reset`), async (request, reply) => {
    const session = await sessions.ensure(request, reply);
    const token = request.query.token ?? "";
    if (token === "") {
      return env.page(request, reply, {
        title: "Reset your password",
        body: resetRequestPage(session.csrfToken, ""),
      });
    }
    if (!(await programme.accounts.checkResetToken(token))) {
      return env.page(request, reply, {
        title: "Link not valid",
        status: 400,
        body: html`<p class="flash flash-error" role="alert" data-testid="error-message">This link is not valid: it may have been used already or have expired.</p>
          ${resetRequestPage(session.csrfToken, "")}`,
      });
    }
    return env.page(request, reply, {
      title: "Choose a new password",
      body: resetPasswordPage(session.csrfToken, token),
    });
  });

  app.post(route(`${PORTAL}/reset`), async (request, reply) => {
    const body = formBody(request);
    const token = field(body, "token");
    const session = await sessions.ensure(request, reply);
    if (token === "") {
      const email = field(body, "email");
      try {
        if (email === "") throw new ValidationError({ email: "Enter your email address." });
        await programme.accounts.requestPasswordReset(email, who(request));
        return env.page(request, reply, {
          title: "Check your mail",
          body: checkMail(email, "has an account"),
        });
      } catch (err) {
        const errors = refusal(err);
        if (!errors) throw err;
        return env.page(request, reply, {
          title: "Reset your password",
          status: 422,
          body: resetRequestPage(session.csrfToken, email, errors),
        });
      }
    }
    const pw = typeof body.password === "string" ? body.password : "";
    try {
      if (pw !== body.confirm) throw new ValidationError({ confirm: "The two passwords differ." });
      const account = await programme.accounts.resetPassword(token, pw);
      await sessions.endFor({ kind: "portal", id: account.id });
      return redirect(request, reply, `${PORTAL}/login?email=${encodeURIComponent(account.email)}`, {
        kind: "success",
        text: "Your password has been changed. Log in with the new one.",
      });
    } catch (err) {
      const errors = refusal(err);
      if (!errors) throw err;
      return env.page(request, reply, {
        title: "Choose a new password",
        status: 422,
        body: resetPasswordPage(session.csrfToken, token, errors),
      });
    }
  });
}
