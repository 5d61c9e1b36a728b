/**
 * The web layer's public face: the HTTP server, the plugin types, and the standard
 * plugins the `switchboard start` server runs. Pages and other HTTP parts add their
 * plugin to `standardHttpPlugins`.
 */
import { adminApi } from "./api/index.js";
import { webAssets } from "./assets/index.js";
import { consolePages } from "./console/index.js";
import type { HttpPlugin } from "./context.js";
import { landingPage } from "./landing.js";
import { metricsEndpoint } from "./metrics.js";
import { portalPages } from "./portal/index.js";

export type { AdminPrincipal, ConsoleLoginResult } from "./admin-auth.js";
export type { HttpContext, HttpPlugin } from "./context.js";
export type { LandingLink } from "./landing.js";
export { LoginThrottle } from "./login-throttle.js";
export { type FieldError, ProblemError, problemFromError, sendProblem } from "./problem.js";
export { HttpServer } from "./server.js";
export { CSRF_FIELD, CSRF_HEADER, type HttpSession, type SessionUser } from "./sessions.js";

export const standardHttpPlugins: HttpPlugin[] = [
  landingPage(),
  adminApi(),
  metricsEndpoint(),
  webAssets(),
  portalPages(),
  consolePages(),
];
