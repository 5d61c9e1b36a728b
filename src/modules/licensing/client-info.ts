/**
 * What the server knows about the client software of a session, kept in
 * `session.data` under "licensing": set when a proof succeeds, when an
 * unlicensed session binds, and when a XEP-0092 answer arrives. Statistics
 * read it; enforcement re-evaluates it when the registry or the time changes.
 */
import type { ClientSession } from "../../core/session.js";

export const CLIENT_INFO_KEY = "licensing";

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
  source: "proof" | "xep-0092" | "sasl2" | "none";
  /** Licensed and at or above the minimum version (and not in a blocked range). */
  ok: boolean;
}

export const UNLICENSED: Readonly<ClientInfo> = { verified: false, source: "none", ok: false };

export function clientInfoOf(session: ClientSession): ClientInfo | undefined {
  return session.data.get(CLIENT_INFO_KEY) as ClientInfo | undefined;
}

export function setClientInfo(session: ClientSession, info: ClientInfo): void {
  session.data.set(CLIENT_INFO_KEY, info);
}

/** A session counts as licensed when a proof (on any carrier) was verified. */
export function isLicensed(info: ClientInfo | undefined): info is ClientInfo & { clientId: string } {
  return info?.verified === true && info.clientId !== undefined;
}
