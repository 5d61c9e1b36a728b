/** Where a session keeps its ClientInfo: `session.data` under "licensing". */
import type { SessionClient } from "../../core/peer-sessions.js";
import type { ClientSession } from "../../core/session.js";
import { type ClientInfo, type ObservedClient, UNLICENSED } from "../../licensing/index.js";

export const CLIENT_INFO_KEY = "licensing";

export function clientInfoOf(session: ClientSession): ClientInfo | undefined {
  return session.data.get(CLIENT_INFO_KEY) as ClientInfo | undefined;
}

export function setClientInfo(session: ClientSession, info: ClientInfo): void {
  session.data.set(CLIENT_INFO_KEY, info);
}

/** What a session that proved no licence runs: the software a SASL2 <user-agent/> named, as unverified. */
export function unprovenClient(session: ClientSession): ClientInfo {
  const software = session.userAgent?.software;
  return software ? { ...UNLICENSED, clientId: software, source: "sasl2" } : { ...UNLICENSED };
}

const CLIENT_FIELDS = ["clientId", "version", "platform", "keyId", "licenceId"] as const;

/**
 * What the other nodes of a cluster are told of a session's client: its record, or before
 * binding what binding will record (so the bind's directory entry already says it).
 */
export function describeClient(session: ClientSession): SessionClient {
  const info = clientInfoOf(session) ?? unprovenClient(session);
  const client: SessionClient = { verified: info.verified && info.clientId !== undefined };
  for (const f of CLIENT_FIELDS) {
    const v = info[f];
    if (v !== undefined && v !== "") client[f] = v;
  }
  return client;
}

/** A client as another node described it, read field by field like a local record (observedClient). */
export function observedPeerClient(client: SessionClient | undefined): ObservedClient {
  if (!client) return { verified: false };
  const c: ObservedClient = { verified: client.verified === true };
  for (const f of CLIENT_FIELDS) {
    const v = client[f];
    if (typeof v === "string" && v !== "") c[f] = v;
  }
  if (c.clientId === undefined) c.verified = false;
  return c;
}
