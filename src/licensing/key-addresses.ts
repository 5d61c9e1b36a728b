/**
 * Distinct client addresses per app key, over fixed windows: the sign of a key extracted from
 * a distributed client is one key suddenly proving from far more addresses than its installed
 * base explains. Counted at every accepted proof (a set insertion); the figures go to the
 * metrics (so an operator can alert on them), and past a configured number of addresses in
 * one window the server logs a warning once per key and window.
 */
import type { Instant } from "./model.js";

export interface KeyAddressFigure {
  clientId: string;
  keyId: string;
  /** Distinct addresses in the current window (capped at the tracking limit). */
  addresses: number;
  /** The same in the window before, for comparison. */
  previous: number;
}

export interface KeyAddressWatchOptions {
  windowMs: number;
  /** Distinct addresses in one window that raise the alert (0: never). */
  alertAt: number;
  /** Most addresses remembered per key and window (memory bound; the count stops there). */
  maxTracked: number;
  now: () => Instant;
  onAlert: (figure: KeyAddressFigure) => void;
}

interface KeyWindow {
  clientId: string;
  keyId: string;
  addresses: Set<string>;
  previous: number;
  alerted: boolean;
}

export class KeyAddressWatch {
  private readonly keys = new Map<string, KeyWindow>();
  private windowStart: Instant;

  constructor(private readonly opts: KeyAddressWatchOptions) {
    this.windowStart = opts.now();
  }

  /** An accepted proof by this key from this address. */
  record(clientId: string, keyId: string, address: string): void {
    this.roll();
    const id = `${clientId}\u0000${keyId}`;
    let w = this.keys.get(id);
    if (!w) {
      w = { clientId, keyId, addresses: new Set(), previous: 0, alerted: false };
      this.keys.set(id, w);
    }
    if (w.addresses.size >= this.opts.maxTracked || w.addresses.has(address)) return;
    w.addresses.add(address);
    const { alertAt } = this.opts;
    if (alertAt > 0 && !w.alerted && w.addresses.size >= alertAt) {
      w.alerted = true;
      this.opts.onAlert(figureOf(w));
    }
  }

  /** Every key seen in this window or the one before, most addresses first. */
  figures(): KeyAddressFigure[] {
    this.roll();
    return [...this.keys.values()].map(figureOf).sort((a, b) => b.addresses - a.addresses);
  }

  /** Starts a new window when the current one is over; keys idle for a whole window are dropped. */
  private roll(): void {
    const now = this.opts.now();
    if (now < this.windowStart + this.opts.windowMs) return;
    const skipped = now >= this.windowStart + 2 * this.opts.windowMs;
    for (const [id, w] of this.keys) {
      w.previous = skipped ? 0 : w.addresses.size;
      if (w.previous === 0) this.keys.delete(id);
      w.addresses = new Set();
      w.alerted = false;
    }
    this.windowStart = now - ((now - this.windowStart) % this.opts.windowMs);
  }
}

function figureOf(w: KeyWindow): KeyAddressFigure {
  return { clientId: w.clientId, keyId: w.keyId, addresses: w.addresses.size, previous: w.previous };
}
