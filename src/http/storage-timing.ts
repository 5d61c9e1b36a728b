/**
 * Storage latency for the metrics endpoint: a wrapper around the Storage interface that
 * times every call and accumulates a histogram per store and operation
 * (`switchboard_storage_operation_seconds{store="offline",operation="push"}`). The
 * accumulators are plain arrays (no label hashing on the hot path); the histogram is
 * formatted only when /metrics is scraped.
 */
import { performance } from "node:perf_hooks";
import type { Storage } from "../core/storage/types.js";

/** Upper bounds in seconds: SQLite calls take tens of microseconds, a slow disk milliseconds. */
export const STORAGE_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5,
];

interface Series {
  store: string;
  operation: string;
  /** Non-cumulative counts per bucket; the last slot counts values above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

export class StorageTiming {
  readonly name = "switchboard_storage_operation_seconds";
  readonly help = "Time spent in storage calls, by store and operation";
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, Series>();

  /** A recorder of one store's operation (created once per method, so recording does no lookup). */
  recorder(store: string, operation: string): (seconds: number) => void {
    const key = `${store}\u0000${operation}`;
    let s = this.series.get(key);
    if (!s) {
      s = { store, operation, counts: new Array(STORAGE_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    const series = s;
    return (seconds) => {
      let i = 0;
      while (i < STORAGE_BUCKETS.length && seconds > STORAGE_BUCKETS[i]!) i++;
      series.counts[i]!++;
      series.sum += seconds;
      series.count++;
    };
  }

  /** Calls made so far, for tests and summaries. */
  total(): number {
    let n = 0;
    for (const s of this.series.values()) n += s.count;
    return n;
  }

  /** The prom-client metric interface: values in the exposition form of a histogram. */
  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.series.values()) {
      if (s.count === 0) continue;
      const labels = { store: s.store, operation: s.operation };
      let acc = 0;
      STORAGE_BUCKETS.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { ...labels, le }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...labels, le: "+Inf" }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

function methodNames(target: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = target; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name !== "constructor" && typeof (target as Record<string, unknown>)[name] === "function")
        names.add(name);
    }
  }
  return [...names];
}

/** Methods passed on untimed: they ask the store's state and do no storage call. */
const UNTIMED = new Set(["roomToAppend"]);

/** An object with the same methods as `target`, each timed into `timing` under `store`. */
function timed<T extends object>(target: T, store: string, timing: StorageTiming): T {
  const out: Record<string, unknown> = {};
  for (const name of methodNames(target)) {
    const fn = (target as Record<string, (...a: unknown[]) => unknown>)[name]!;
    if (UNTIMED.has(name)) {
      out[name] = fn.bind(target);
      continue;
    }
    const record = timing.recorder(store, name);
    out[name] = (...args: unknown[]) => {
      const start = performance.now();
      const result = fn.apply(target, args);
      if (result instanceof Promise) {
        return result.then(
          (v) => {
            record((performance.now() - start) / 1000);
            return v;
          },
          (err) => {
            record((performance.now() - start) / 1000);
            throw err;
          },
        );
      }
      record((performance.now() - start) / 1000);
      return result;
    };
  }
  return out as T;
}

/** The same storage, every call timed. Per-feature stores are wrapped once and cached. */
export function timedStorage(storage: Storage, timing: StorageTiming): Storage {
  const cache = new Map<string, unknown>();
  const feature = <S extends object>(kind: string, name: string, make: () => S): S => {
    const key = `${kind}:${name}`;
    let s = cache.get(key) as S | undefined;
    if (!s) {
      s = timed(make(), key, timing);
      cache.set(key, s);
    }
    return s;
  };
  return {
    accounts: timed(storage.accounts, "accounts", timing),
    roster: timed(storage.roster, "roster", timing),
    offline: timed(storage.offline, "offline", timing),
    blocklist: timed(storage.blocklist, "blocklist", timing),
    keyValue: (name) => feature("keyValue", name, () => storage.keyValue(name)),
    documents: <T>(name: string) => feature("documents", name, () => storage.documents<T>(name)),
    archive: <T>(name: string) => feature("archive", name, () => storage.archive<T>(name)),
    messages: (name, opts) =>
      feature(`messages:${opts.ownedByAccounts ? "account" : "room"}`, name, () =>
        storage.messages(name, opts),
      ),
    ...(storage.appendQueues ? { appendQueues: () => storage.appendQueues!() } : {}),
    close: () => storage.close(),
  };
}
