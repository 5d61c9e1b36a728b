/**
 * What the server knows about the client software of a session: set when a proof
 * succeeds, when an unlicensed session binds, and when a XEP-0092 answer arrives.
 * Statistics read it; enforcement re-evaluates it when the registry or the time changes.
 */
export interface ClientInfo {
  /** The app's client id (proof) or the software name the client reported (XEP-0092, unverified). */
  clientId?: string;
  version?: string;
  platform?: string;
  keyId?: string;
  /** The licence the session runs under (verified sessions only). */
  licenceId?: string;
  /** True only when a signature proved the client id, version and platform. */
  verified: boolean;
  /** "first-party": the server's own web chat, admitted by its browser grant (admitFirstParty). */
  source: "proof" | "xep-0092" | "sasl2" | "none" | "first-party";
  /** Licensed and at or above the minimum version (and not in a blocked range). */
  ok: boolean;
}

export const UNLICENSED: Readonly<ClientInfo> = { verified: false, source: "none", ok: false };

/**
 * The client id of the server's own web chat (/chat) in statistics. It is not a registered
 * app (a registered id cannot contain ':'), and no proof names it: the web chat is admitted
 * by the browser grant the server gave the page (docs/licensing-protocol.md, threat model).
 */
export const WEB_CHAT_CLIENT_ID = "switchboard:web-chat";

/** A session counts as licensed when a proof (on any carrier) was verified. */
export function isLicensed(info: ClientInfo | undefined): info is ClientInfo & { clientId: string } {
  return info?.verified === true && info.clientId !== undefined && info.source !== "first-party";
}

/** The server's own web chat (see WEB_CHAT_CLIENT_ID). */
export function isFirstParty(info: ClientInfo | undefined): boolean {
  return info?.source === "first-party";
}
