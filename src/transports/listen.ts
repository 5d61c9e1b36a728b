/**
 * Listening on several addresses with one port number (`bind`: 127.0.0.1 and ::1 by
 * default). The first address that listens decides the port — a free one when 0 is asked —
 * and the others take the same, so a client reaches the service on that port whichever
 * address its name resolves to. An address this host does not have (IPv6 disabled:
 * EADDRNOTAVAIL, EAFNOSUPPORT) is skipped with a warning while another one listens; any
 * other failure (a port in use) stops the start.
 */
import type { Logger } from "pino";

const UNAVAILABLE = new Set(["EADDRNOTAVAIL", "EAFNOSUPPORT"]);

/** Listens with `listenOne(host, port)` on every address; returns the port and the addresses bound. */
export async function listenOnAddresses(
  addresses: readonly string[],
  port: number,
  listenOne: (host: string, port: number) => Promise<number>,
  log: Pick<Logger, "warn">,
  what: string,
): Promise<{ port: number; addresses: string[] }> {
  let chosen = port;
  const bound: string[] = [];
  for (const host of addresses) {
    try {
      const got = await listenOne(host, chosen);
      if (bound.length === 0) chosen = got;
      bound.push(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (!UNAVAILABLE.has(code)) throw err;
      log.warn({ address: host, code }, `${what}: this host has no address ${host}; not listening on it`);
    }
  }
  if (bound.length === 0) {
    throw new Error(`${what}: none of the listen addresses (${addresses.join(", ")}) exists on this host`);
  }
  return { port: chosen, addresses: bound };
}

/** An address as it appears in a URL or after a port: IPv6 in brackets. */
export function hostForUrl(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}
