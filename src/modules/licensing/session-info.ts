/** Where a session keeps its ClientInfo: `session.data` under "licensing". */
import type { ClientSession } from "../../core/session.js";
import type { ClientInfo } from "../../licensing/index.js";

export const CLIENT_INFO_KEY = "licensing";

export function clientInfoOf(session: ClientSession): ClientInfo | undefined {
  return session.data.get(CLIENT_INFO_KEY) as ClientInfo | undefined;
}

export function setClientInfo(session: ClientSession, info: ClientInfo): void {
  session.data.set(CLIENT_INFO_KEY, info);
}
