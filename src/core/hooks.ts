/**
 * Named events with priorities, in the manner of Prosody's module:hook():
 * handlers run highest priority first; a handler that returns `true` claims the
 * event and stops the chain. Handlers may be sync or async; when every handler
 * is synchronous, firing costs no promise allocation (the stanza hot path).
 */

export type HookResult = boolean | undefined | void;
export type HookHandler<P> = (payload: P) => HookResult | Promise<HookResult>;

interface Entry<P> {
  handler: HookHandler<P>;
  priority: number;
  seq: number;
}

function isPromise<T>(v: unknown): v is Promise<T> {
  return typeof v === "object" && v !== null && typeof (v as Promise<T>).then === "function";
}

export class HookBus<Events extends { [K in keyof Events]: unknown }> {
  private readonly chains = new Map<keyof Events, Entry<never>[]>();
  private seq = 0;

  /** Registers a handler; returns a function that removes it. */
  on<K extends keyof Events>(event: K, handler: HookHandler<Events[K]>, priority = 0): () => void {
    const entry: Entry<Events[K]> = { handler, priority, seq: this.seq++ };
    const chain = ((this.chains.get(event) as Entry<Events[K]>[] | undefined) ?? []).slice();
    chain.push(entry);
    // Higher priority first; equal priorities keep registration order.
    chain.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.chains.set(event, chain as Entry<never>[]);
    return () => {
      const current = this.chains.get(event) as Entry<Events[K]>[] | undefined;
      if (!current) return;
      const next = current.filter((e) => e !== entry);
      if (next.length === 0) this.chains.delete(event);
      else this.chains.set(event, next as Entry<never>[]);
    };
  }

  has(event: keyof Events): boolean {
    return this.chains.has(event);
  }

  /**
   * Runs the chain. Returns true when a handler claimed the event. The result is
   * a plain boolean if every handler ran synchronously, otherwise a promise.
   */
  fire<K extends keyof Events>(event: K, payload: Events[K]): boolean | Promise<boolean> {
    const chain = this.chains.get(event) as Entry<Events[K]>[] | undefined;
    if (!chain) return false;
    return runFrom(chain, 0, payload);
  }

  /** Like fire(), but always returns a promise. */
  async fireAsync<K extends keyof Events>(event: K, payload: Events[K]): Promise<boolean> {
    return this.fire(event, payload);
  }
}

function runFrom<P>(chain: Entry<P>[], start: number, payload: P): boolean | Promise<boolean> {
  for (let i = start; i < chain.length; i++) {
    const r = chain[i]!.handler(payload);
    if (isPromise<HookResult>(r)) {
      return r.then((v) => (v === true ? true : runFrom(chain, i + 1, payload)));
    }
    if (r === true) return true;
  }
  return false;
}
