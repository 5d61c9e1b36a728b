/** `link list`: the live interconnection links of the running server, with their licence standing. */
import { z } from "zod";
import { CommandError, defineCommand } from "../../core/commands.js";
import type { InterconnectApi, LinkView } from "./api.js";

const linkView: z.ZodType<LinkView> = z.object({
  kind: z.enum(["component", "s2s"]),
  domain: z.string().describe("the component's or the remote server's domain"),
  localDomain: z
    .string()
    .describe("our served domain (server-to-server), or this server's domain (components)"),
  direction: z.enum(["in", "out"]).describe("who opened the stream: in, the other side; out, this server"),
  method: z.string().describe('how it authenticated: "secret" (XEP-0114), "sasl-external" or "dialback"'),
  since: z.number().int().describe("when it was authenticated, in milliseconds since 1970-01-01T00:00:00Z"),
  stanzasIn: z.number().int().min(0).describe("stanzas received on the link"),
  stanzasOut: z.number().int().min(0).describe("stanzas sent on it"),
  address: z.string().describe("the other side's network address"),
  licence: z
    .object({
      scope: z.enum(["peering", "gateway"]).describe("gateway for components, peering for server-to-server"),
      applies: z
        .boolean()
        .describe(
          "licences decide for this link: always for components; for federation under the licensed policy",
        ),
      status: z
        .enum(["active", "suspended", "revoked", "expired", "pending", "none"])
        .describe("the standing of the domain's licence of that scope; none: it never had one"),
      licenceId: z.string().optional(),
      mode: z.enum(["open", "warn", "enforce"]).describe("the domain's mode under the schedule now"),
      cutoff: z
        .number()
        .int()
        .optional()
        .describe("under warn: when the link stops unless a licence is granted (ms since 1970)"),
    })
    .describe("how the link's licence stands now"),
});

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
  output: z.object({ links: z.array(linkView).describe("by domain, then oldest first") }),
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
