/**
 * Adoption over time for the dashboard chart, computed from the daily activity documents
 * (`documents("licensing-daily")`, one per account and day): per day, the share of active
 * accounts whose clients are all supported — licensed and at/above the minimum version,
 * judged by the current policy exactly as the headline figure is — and the share whose
 * clients all proved a licence (independent of version rules). Past days cannot change
 * except through the registry, so their figures are cached per registry revision.
 */
import type { Clock } from "../../core/clock.js";
import type { Storage } from "../../core/storage/types.js";
import type { DailyClient } from "../../licensing/index.js";
import {
  currentClients,
  dailyStore,
  LicensingRegistry,
  supportShare,
  utcDay,
} from "../../licensing/index.js";

const DAY_MS = 86_400_000;

export interface AdoptionPoint {
  day: string;
  /** Active accounts that day. */
  accounts: number;
  /** Share (0–1) on supported clients, null without accounts. */
  supported: number | null;
  /** Share (0–1) whose every client proved a licence, null without accounts. */
  licensed: number | null;
}

export class AdoptionHistory {
  private readonly cache = new Map<string, { revision: number; point: AdoptionPoint }>();

  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
  ) {}

  /** The last `days` UTC days, oldest first, today included. */
  async series(days: number): Promise<AdoptionPoint[]> {
    const now = this.clock.now();
    const snapshot = await new LicensingRegistry(this.storage, this.clock).snapshot();
    const today = utcDay(now);
    const out: AdoptionPoint[] = [];
    for (let i = days - 1; i >= 0; i--) {
      const day = utcDay(now - i * DAY_MS);
      const cached = this.cache.get(day);
      if (day !== today && cached && cached.revision === snapshot.revision) {
        out.push(cached.point);
        continue;
      }
      const byAccount: [string, DailyClient[]][] = [];
      for (const { key, value } of await dailyStore(this.storage).list({ prefix: `${day}|` })) {
        const clients = Array.isArray(value?.clients) ? value.clients : [];
        byAccount.push([key.slice(day.length + 1), currentClients(clients)]);
      }
      const supported = supportShare(byAccount, snapshot, snapshot.policy, now);
      const licensedAccounts = byAccount.filter(
        ([, clients]) => clients.length > 0 && clients.every((c) => c.verified),
      ).length;
      const point: AdoptionPoint = {
        day,
        accounts: byAccount.length,
        supported: supported.share,
        licensed: byAccount.length === 0 ? null : licensedAccounts / byAccount.length,
      };
      if (day !== today) this.cache.set(day, { revision: snapshot.revision, point });
      out.push(point);
    }
    // Days that fell out of the window need no cache entry.
    for (const day of this.cache.keys()) if (!out.some((p) => p.day === day)) this.cache.delete(day);
    return out;
  }
}
