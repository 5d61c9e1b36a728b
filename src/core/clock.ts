/** Time source, injectable so tests can move time (scheduled cutoffs, rate windows, daily limits). */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
