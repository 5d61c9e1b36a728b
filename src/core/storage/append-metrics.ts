/**
 * The message archives' append queues as metrics, by store: how many rows wait to be written,
 * how many appends and callers wait for room (backpressure), how many batches were written.
 * Declared once for the server, whatever modules use the stores; read at scrape time.
 */
import type { MetricDefinition, MetricRegistry } from "../metrics.js";
import type { AppendQueueFigures, Storage } from "./types.js";

/** The figures summed by store name (a name used by accounts' and rooms' tables alike counts once). */
function byStore(storage: Storage, pick: (f: AppendQueueFigures) => number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const [store, figures] of storage.appendQueues?.() ?? []) {
    const value = pick(figures);
    if (value !== undefined) out.set(store, (out.get(store) ?? 0) + value);
  }
  return out;
}

/** Adds the metrics when the backend reports its queues; returns the function that removes them. */
export function addAppendQueueMetrics(metrics: MetricRegistry, storage: Storage): () => void {
  if (!storage.appendQueues) return () => undefined;
  const metric = (
    name: string,
    help: string,
    type: MetricDefinition["type"],
    pick: (f: AppendQueueFigures) => number | undefined,
  ) =>
    metrics.add({
      name,
      help,
      type,
      labelNames: ["store"],
      collect: () => [...byStore(storage, pick)].map(([store, n]) => [{ store }, n] as const),
    });
  const removers = [
    metric(
      "switchboard_archive_append_queued_rows",
      "Message-archive rows taken and not yet written, by store",
      "gauge",
      (f) => f.queuedRows,
    ),
    metric(
      "switchboard_archive_append_waiting",
      "Message-archive appends waiting for room in a full queue, by store (PostgreSQL)",
      "gauge",
      (f) => f.waitingForRoom,
    ),
    metric(
      "switchboard_archive_append_callers_waiting",
      "Messages held before their archive append because the store's queue is full (backpressure), by store",
      "gauge",
      (f) => f.callersWaiting,
    ),
    metric(
      "switchboard_archive_append_batches_total",
      "Batches of message-archive rows written (or failed), by store",
      "counter",
      (f) => f.batches,
    ),
  ];
  return () => {
    for (const remove of removers) remove();
  };
}
