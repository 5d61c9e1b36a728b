/**
 * Messages across a federated link: the senders are logged in to one server, the recipients
 * to the other, so every message crosses the server-to-server link between them.
 * - federated throughput: sender i writes to recipient i (as many of each), a bounded window
 *   in flight per sender, as in the routed throughput phase;
 * - links: one sender on each of several domains of the sending server writes one message to
 *   the first recipient, so that the sending server opens one link per domain.
 */
import { BenchConnection, type ConnectionTarget } from "./connection.js";
import { attach, routedThroughput, stanza } from "./messages.js";
import { runPool } from "./pool.js";
import type { AccountSet, LinksResult, ThroughputResult } from "./protocol.js";
import { attr } from "./scanner.js";
import type { ScramKeyCache } from "./scram.js";
import type { SessionPool } from "./sessions.js";

/** How long one link may take to be set up and carry its first message. */
const LINK_WAIT_MS = 30_000;
const MAX_ERRORS_KEPT = 5;

export async function federatedThroughput(
  senders: SessionPool,
  recipients: SessionPool,
  messages: number,
  window: number,
): Promise<Omit<ThroughputResult, "wallMs" | "cpuMs">> {
  const n = senders.held.length;
  if (n === 0 || recipients.held.length !== n) {
    throw new Error(
      `federated throughput needs as many recipients as senders (${n} and ${recipients.held.length})`,
    );
  }
  return routedThroughput(
    {
      senders: senders.held,
      receivers: recipients.held,
      receiverJids: recipients.held.map((_, i) => recipients.jidOf(i)),
      recipientOf: (sender) => sender,
      takeDropped: () => senders.takeDropped() + recipients.takeDropped(),
    },
    messages,
    window,
  );
}

/**
 * For each domain, logs in account 1 of that domain on the sending server (`target` with the
 * domain changed), sends one message to the first held recipient, waits for it to arrive, and
 * logs out again: the link the message opened stays, idle.
 */
export async function openLinks(
  target: ConnectionTarget,
  accounts: AccountSet,
  domains: string[],
  concurrency: number,
  recipients: SessionPool,
  cache: ScramKeyCache,
): Promise<Omit<LinksResult, "wallMs" | "cpuMs">> {
  const recipient = recipients.held[0];
  if (!recipient) throw new Error("links need a held recipient");
  const waiting = new Map<string, () => void>();
  const detach = attach([recipient], (_receiver, openTag) => {
    const id = attr(openTag, "id");
    if (id === undefined) return;
    waiting.get(id)?.();
    waiting.delete(id);
  });
  const errors: string[] = [];
  let opened = 0;
  let failures = 0;
  try {
    await runPool(domains.length, concurrency, async (k) => {
      const domain = domains[k]!;
      const conn = new BenchConnection(
        { ...target, domain },
        `${accounts.prefix}1`,
        `${accounts.passwordPrefix}1`,
        cache,
      );
      const id = `k${k}.0`;
      let timer: NodeJS.Timeout | undefined;
      try {
        await conn.login();
        const arrived = new Promise<void>((resolve, reject) => {
          waiting.set(id, resolve);
          timer = setTimeout(
            () => reject(new Error(`${domain}: no message across the link after ${LINK_WAIT_MS} ms`)),
            LINK_WAIT_MS,
          );
        });
        conn.send(stanza(recipients.jidOf(0), id));
        await arrived;
        opened++;
      } catch (err) {
        failures++;
        if (errors.length < MAX_ERRORS_KEPT) errors.push((err as Error).message);
      } finally {
        clearTimeout(timer);
        waiting.delete(id);
        await conn.close();
      }
    });
  } finally {
    detach();
  }
  return { opened, failures, errors };
}
