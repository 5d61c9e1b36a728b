/**
 * Messages per minute, from the server's running count of messages received from clients
 * (the console's dashboard, a cluster node's heartbeat): sampled every few seconds, the rate
 * is the growth over the last minute (or over as much of it as has been sampled since the start).
 */
export class MessageRate {
  private readonly samples: { at: number; count: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly count: () => number,
    private readonly now: () => number,
    private readonly windowMs = 60_000,
  ) {}

  sample(): void {
    const at = this.now();
    this.samples.push({ at, count: this.count() });
    // Keep one sample older than the window, the baseline of the rate.
    while (this.samples.length > 2 && this.samples[1]!.at <= at - this.windowMs) this.samples.shift();
  }

  start(intervalMs = 5_000): void {
    this.sample();
    this.timer ??= setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Messages per minute, or undefined until two samples a few seconds apart exist. */
  perMinute(): number | undefined {
    const at = this.now();
    const current = this.count();
    const base = this.samples.find((s) => s.at >= at - this.windowMs) ?? this.samples[0];
    if (!base || at - base.at < 1_000) return undefined;
    return ((current - base.count) * 60_000) / (at - base.at);
  }
}
