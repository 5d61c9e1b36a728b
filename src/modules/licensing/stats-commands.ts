/** `switchboard stats clients`: which clients and versions the users run, and what a cutoff would do. */
import { z } from "zod";
import { CommandError, defineCommand } from "../../core/commands.js";
import { clientStatsReport, formatClientStats, utcDay } from "../../licensing/index.js";
import { statsClientsOutput } from "./output-schemas.js";

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** A real day (2026-02-30 parses, but as 2 March). */
function isCalendarDay(day: string): boolean {
  const t = Date.parse(`${day}T00:00:00Z`);
  return !Number.isNaN(t) && utcDay(t) === day;
}

export const statsClients = defineCommand({
  name: ["stats", "clients"],
  description:
    "Client statistics: live sessions by app, version, platform and verification; active accounts per day; " +
    "share on supported clients; what enforcement would cut off now",
  args: [{ name: "day", description: "UTC day of the daily figures, YYYY-MM-DD (default: today)" }],
  input: z.object({ day: z.string().regex(DAY, "expected YYYY-MM-DD").optional() }),
  output: statsClientsOutput,
  mutates: false,
  async run(ctx, input) {
    if (input.day !== undefined && !isCalendarDay(input.day))
      throw new CommandError(`not a calendar day: ${input.day}`);
    const report = await clientStatsReport(ctx.storage, ctx.clock, input.day ? { day: input.day } : {});
    return { message: formatClientStats(report), data: report };
  },
});

export const statsCommands = [statsClients];
