/** `link list`: the live interconnection links of the running server, with their licence standing. */
import { z } from "zod";
import { CommandError, defineCommand } from "../../core/commands.js";
import type { InterconnectApi, LinkView } from "./api.js";

/** documents(LINKS_STORE): each running server's live links, by node, rewritten every few seconds. */
export const LINKS_STORE = "interconnect-links";

export interface PublishedLinks {
  node: string;
  at: number;
  intervalMs: number;
  links: LinkView[];
}

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
    let all: LinkView[];
    if (ctx.live) {
      const api = ctx.live.api<InterconnectApi>("interconnect");
      if (!api) throw new CommandError("the interconnect module is not loaded", 409);
      all = api.links();
    } else {
      // From the CLI: what the running servers wrote lately (a server that stopped writing is left out).
      const now = ctx.clock.now();
      all = (await ctx.storage.documents<PublishedLinks>(LINKS_STORE).list())
        .map((e) => e.value)
        .filter((p) => now - p.at <= 3 * p.intervalMs + 1000)
        .flatMap((p) => p.links);
    }
    const domain = input.subject?.toLowerCase();
    const links = all
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
