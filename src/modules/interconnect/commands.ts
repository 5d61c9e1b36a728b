/** `link list`: the live interconnection links of the running server, with their licence standing. */
import { z } from "zod";
import { CommandError, defineCommand } from "../../core/commands.js";
import type { InterconnectApi, LinkView } from "./api.js";

const iso = (t: number | undefined) =>
  t === undefined ? "" : new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");

function licenceText(l: LinkView["licence"]): string {
  if (!l.applies) return "licence not required";
  const licence = l.status === "none" ? "no licence" : `licence ${l.licenceId} ${l.status}`;
  const cutoff = l.cutoff === undefined ? "" : `, stops ${iso(l.cutoff)}`;
  return `${licence}, ${l.mode}${cutoff}`;
}

export const linkList = defineCommand({
  name: ["link", "list"],
  description:
    "Live interconnection links (components and server-to-server streams) with their licence standing",
  args: [
    { name: "kind", description: "only component or s2s links" },
    { name: "subject", description: "only links with this domain" },
  ],
  input: z.object({ kind: z.enum(["component", "s2s"]).optional(), subject: z.string().min(1).optional() }),
  mutates: false,
  async run(ctx, input) {
    const api = ctx.live?.api<InterconnectApi>("interconnect");
    if (!api) {
      throw new CommandError(
        ctx.live
          ? "the interconnect module is not loaded"
          : "links are known to the running server only: use its HTTP API (GET /api/v1/link/list) or the console's Links page",
        409,
      );
    }
    const domain = input.subject?.toLowerCase();
    const links = api
      .links()
      .filter(
        (l) =>
          (input.kind === undefined || l.kind === input.kind) &&
          (domain === undefined || l.domain === domain),
      )
      .sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : a.since - b.since));
    const message =
      links
        .map(
          (l) =>
            `${l.domain}  ${l.kind} ${l.direction} ${l.method}  since ${iso(l.since)}  stanzas in ${l.stanzasIn} out ${l.stanzasOut}  ${licenceText(l.licence)}`,
        )
        .join("\n") || "(no links)";
    return { message, data: { links } };
  },
});

export const linkCommands = [linkList];
