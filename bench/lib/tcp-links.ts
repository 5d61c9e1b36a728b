/**
 * Counts a server's open server-to-server links from the kernel's socket table, the same way
 * for every server implementation: established TCP connections whose local end is the
 * server's s2s address and port are the links other servers opened to it.
 */
import { readFileSync } from "node:fs";
import os from "node:os";

const ESTABLISHED = "01";

/**
 * `host:port` as /proc/net/tcp writes a local address: the IPv4 address as the hex of its
 * 32-bit value in memory (byte order of the machine), then the port in hex, both upper case.
 */
export function procNetAddress(
  host: string,
  port: number,
  endianness: "LE" | "BE" = os.endianness(),
): string {
  const bytes = host.split(".").map(Number);
  if (bytes.length !== 4 || !bytes.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw new Error(`not an IPv4 address: ${host}`);
  }
  const ordered = endianness === "LE" ? bytes.reverse() : bytes;
  const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, "0");
  return `${ordered.map((b) => hex(b, 2)).join("")}:${hex(port, 4)}`;
}

/** Established connections in a /proc/net/tcp table whose local end is `host:port`. */
export function establishedAt(table: string, host: string, port: number, endianness?: "LE" | "BE"): number {
  const local = procNetAddress(host, port, endianness);
  let count = 0;
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[3] === ESTABLISHED) count++;
  }
  return count;
}

/** Links other servers hold open to the server listening at `host:port` (IPv4) right now. */
export function inboundLinks(host: string, port: number): number {
  return establishedAt(readFileSync("/proc/net/tcp", "utf8"), host, port);
}
