/**
 * What `switchboard start` prints when a listener cannot open its port: the address and port,
 * the reason in words, and what to do, instead of Node's stack trace. The usual case is a
 * second XMPP server on the same machine (Debian's prosody and ejabberd packages start one on
 * 5222 and 5269 when installed).
 */

const LISTENER_OPTIONS =
  "--c2s-port, --c2s-tls-port, --s2s-port, --component-port, --http-port (0 turns a listener off)";

interface ListenError {
  code: string;
  address?: string;
  port?: number;
}

function isListenError(err: unknown): err is ListenError & Error {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: unknown; syscall?: unknown };
  return e.syscall === "listen" && typeof e.code === "string";
}

/** The message for a failed listen, or undefined when `err` is something else. */
export function listenFailureMessage(err: unknown): string | undefined {
  if (!isListenError(err)) return undefined;
  const where =
    err.address === undefined
      ? `port ${err.port ?? "?"}`
      : err.address.includes(":")
        ? `[${err.address}]:${err.port}`
        : `${err.address}:${err.port}`;
  switch (err.code) {
    case "EADDRINUSE":
      return (
        `cannot listen on ${where}: another program already listens there (another XMPP server such as ` +
        `Prosody or ejabberd, or a second Switchboard; \`ss -ltnp\` shows which). Stop it, or choose other ports: ` +
        `${LISTENER_OPTIONS}.`
      );
    case "EACCES":
      return (
        `cannot listen on ${where}: permission denied (ports below 1024 need root or the ` +
        `CAP_NET_BIND_SERVICE capability). Choose other ports: ${LISTENER_OPTIONS}.`
      );
    case "EADDRNOTAVAIL":
      return `cannot listen on ${where}: the address is not one of this machine's. Check --bind.`;
    default:
      return `cannot listen on ${where}: ${err.code} (${err.message}).`;
  }
}
