/**
 * The LiveServer of a running server (src/commands/command.ts): what admin commands run
 * through the HTTP API or the console may do to live sessions — list the sessions of an
 * account, close one, close them all. Closed streams get a `policy-violation` stream
 * error whose text gives the reason.
 */
import type { LiveServer, LiveSession } from "../core/commands.js";
import { StreamError } from "../core/errors.js";
import type { ClientSession } from "../core/session.js";
import type { SessionDirectory } from "../core/session-directory.js";
import { observedClient } from "../licensing/index.js";

function describe(s: ClientSession): LiveSession {
  const c = observedClient(s);
  const known = c.clientId !== undefined || c.version !== undefined;
  return {
    resource: s.resource ?? "",
    address: s.remoteAddress,
    transport: s.transport,
    secure: s.secure,
    connectedAt: s.connectedAt,
    ...(known
      ? {
          client: {
            ...(c.clientId !== undefined ? { clientId: c.clientId } : {}),
            ...(c.version !== undefined ? { version: c.version } : {}),
            ...(c.platform !== undefined ? { platform: c.platform } : {}),
            verified: c.verified,
          },
        }
      : {}),
  };
}

export class Live implements LiveServer {
  constructor(
    private readonly sessions: SessionDirectory,
    private readonly apis: ReadonlyMap<string, unknown> = new Map(),
  ) {}

  api<T>(moduleName: string): T | undefined {
    return this.apis.get(moduleName) as T | undefined;
  }

  disconnectAccount(username: string, reason: string): number {
    const open = this.sessions.resourcesOf(username).filter((s) => !s.closed);
    for (const s of open) s.close(new StreamError("policy-violation", reason));
    return open.length;
  }

  sessionsOf(username: string): LiveSession[] {
    return this.sessions
      .resourcesOf(username)
      .filter((s) => !s.closed)
      .map(describe)
      .sort((a, b) => a.connectedAt - b.connectedAt || a.resource.localeCompare(b.resource));
  }

  kick(username: string, resource: string, reason: string): boolean {
    const s = this.sessions.get(username, resource);
    if (!s || s.closed) return false;
    s.close(new StreamError("policy-violation", reason));
    return true;
  }
}
