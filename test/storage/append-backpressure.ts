/**
 * What both backends' backpressure tests share: senders that append as a message handler does
 * (asking for room first, waiting while the store is full), and the append-queue metrics.
 */

import { MetricRegistry } from "../../src/core/metrics.js";
import { addAppendQueueMetrics } from "../../src/core/storage/append-metrics.js";
import type { ArchivedMessage, MessageArchiveStore, Storage } from "../../src/core/storage/types.js";

export const message = (owner: string, id: string, at: number): ArchivedMessage => ({
  id,
  owner,
  peer: "peer@example.com",
  peerResource: "",
  at,
  direction: "in",
  stanza: `<message id='${id}'><body>${id}</body></message>`,
  text: id,
});

export interface Flood {
  /** Ids appended so far, per owner, in the order of the calls. */
  sent: Map<string, string[]>;
  /** Every append's promise. */
  writes: Promise<boolean>[];
  /** Resolves once every sender has appended all its messages. */
  done: Promise<void>;
  /** Appends made so far. */
  count(): number;
}

/**
 * One sender per owner, each appending `perSender` messages one after the other as fast as it
 * may: one per turn of the event loop, waiting first whenever the store says it is full.
 */
export function flood(store: MessageArchiveStore, owners: string[], perSender: number): Flood {
  const sent = new Map(owners.map((o) => [o, [] as string[]]));
  const writes: Promise<boolean>[] = [];
  const send = async (owner: string) => {
    for (let i = 0; i < perSender; i++) {
      await new Promise((r) => setImmediate(r));
      const room = store.roomToAppend?.();
      if (room) await room;
      const id = `${owner}-${i}`;
      sent.get(owner)!.push(id);
      writes.push(store.append(message(owner, id, i)));
    }
  };
  return {
    sent,
    writes,
    done: Promise.all(owners.map(send)).then(() => undefined),
    count: () => writes.length,
  };
}

/** The append-queue metrics of a storage, read as a scrape reads them: store label → value. */
export function appendMetrics(storage: Storage): (name: string, store: string) => number | undefined {
  const registry = new MetricRegistry();
  addAppendQueueMetrics(registry, storage);
  return (name, store) => {
    const def = registry.list().find((d) => d.name === name);
    if (!def) return undefined;
    const values = def.collect();
    if (typeof values === "number") return values;
    for (const [labels, n] of values) if (labels.store === store) return n;
    return undefined;
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
