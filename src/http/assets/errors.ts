/**
 * Errors of the browser faces: a friendly page (or, for htmx, a message swapped into the
 * flash area) for people, an RFC 9457 problem document for scripts. The same statuses
 * either way.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { html, type SafeHtml } from "../html.js";
import { ProblemError, problemFromError, sendProblem } from "../problem.js";
import { flashList } from "./layout.js";
import { isHtmx, sendFragment, sendPage, wantsHtml } from "./respond.js";

export interface ErrorPageOptions {
  status: number;
  title: string;
  message: string;
}

/** Renders an error page in the face's layout. */
export type ErrorPageRenderer = (request: FastifyRequest, opts: ErrorPageOptions) => Promise<SafeHtml>;

const TITLES: Record<number, string> = {
  400: "The request could not be used",
  401: "Please log in",
  403: "Not allowed",
  404: "Page not found",
  405: "Not allowed here",
  409: "Conflict",
  413: "Too large",
  429: "Too many attempts",
  500: "Something went wrong",
};

/** What people read for an error: our own messages as they are, never the details of a failure. */
function friendly(problem: ProblemError): ErrorPageOptions {
  const status = problem.status;
  const title = TITLES[status] ?? (status >= 500 ? TITLES[500]! : "The request could not be used");
  let message = problem.message;
  if (problem.problemType === "csrf-failed") {
    message = "This form has expired or was not sent from this site. Reload the page and try again.";
  } else if (status >= 500) {
    message = `The server could not complete this request. It has been logged (request ${problem.message.match(/request ([^)]+)/)?.[1] ?? "?"}).`;
  } else if (status === 404) {
    message = "There is nothing at this address. It may have been removed, or the link is mistyped.";
  }
  return { status, title, message };
}

export async function replyError(
  request: FastifyRequest,
  reply: FastifyReply,
  problem: ProblemError,
  render: ErrorPageRenderer,
): Promise<FastifyReply> {
  if (!wantsHtml(request)) return sendProblem(request, reply, problem);
  for (const [k, v] of Object.entries(problem.headers)) reply.header(k, v);
  const page = friendly(problem);
  if (isHtmx(request)) {
    // htmx keeps the page; the message goes to the flash area at the top of it.
    reply.header("hx-retarget", "#flashes").header("hx-reswap", "innerHTML");
    return sendFragment(
      reply,
      flashList([{ kind: "error", text: `${page.title}: ${page.message}` }]),
      page.status,
    );
  }
  return sendPage(reply, await render(request, page), page.status);
}

/**
 * Friendly errors and 404s for every route of a face (an encapsulated plugin instance).
 * `translate` may turn errors of the face's own services into problems first.
 */
export function installPageErrors(
  app: FastifyInstance,
  render: ErrorPageRenderer,
  translate: (err: unknown) => unknown = (err) => err,
): void {
  app.setErrorHandler(async (err, request, reply) => {
    const problem = problemFromError(translate(err), request);
    if (problem.status >= 500) request.log.error({ err }, "page failed");
    return replyError(request, reply, problem, render);
  });
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split("?")[0]!;
    return replyError(request, reply, new ProblemError(404, "not-found", `nothing at ${path}`), render);
  });
}

/** The body of an error page. */
export function errorBody(opts: ErrorPageOptions, home: string): SafeHtml {
  return html`<h1 data-testid="error-title">${opts.title}</h1>
    <p data-testid="error-message">${opts.message}</p>
    <p><a href="${home}">Back to the start page</a></p>`;
}
