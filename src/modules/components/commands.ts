/** Admin commands for components: add (with its secret), remove, list. */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { auditCommand } from "../../commands/audit.js";
import { isoInstant } from "../../commands/output-schemas.js";
import { type CommandContext, CommandError, defineCommand } from "../../core/commands.js";
import { JidError, normalizeDomain } from "../../core/jid.js";
import { ComponentRegistry, componentKey, sealSecret } from "./registry.js";

const componentDomainField = z.string().describe("the component's domain, normalised");

/** The normalised domain, or a 400 saying why it cannot be a component's. */
function componentDomain(ctx: CommandContext, raw: string): string {
  let domain: string;
  try {
    domain = normalizeDomain(raw);
  } catch (err) {
    if (err instanceof JidError) throw new CommandError(`invalid domain "${raw}": ${err.message}`);
    throw err;
  }
  if (domain === ctx.config.domain) throw new CommandError(`${domain} is the domain this server serves`, 409);
  return domain;
}

export const componentAdd = defineCommand({
  name: ["component", "add"],
  description: "Accept a component (XEP-0114 gateway or service) for a domain, with its shared secret",
  args: [
    { name: "domain", description: "the component's domain, e.g. irc.gw.example.org", positional: true },
    {
      name: "secret",
      description: "the shared secret (at least 16 characters; default: a random one, printed once)",
    },
  ],
  input: z.object({ domain: z.string().min(1), secret: z.string().min(16).optional() }),
  output: z.object({
    domain: componentDomainField,
    replaced: z.boolean().describe("the domain was accepted before: its secret was replaced"),
    secret: z
      .string()
      .optional()
      .describe("the generated secret, shown only this once; absent when --secret was given"),
  }),
  mutates: true,
  async run(ctx, input) {
    const domain = componentDomain(ctx, input.domain);
    const secret = input.secret ?? randomBytes(24).toString("base64url");
    const registry = new ComponentRegistry(ctx.storage);
    const replaced = await registry.put({
      domain,
      sealedSecret: sealSecret(componentKey(ctx.config.dataDir), secret),
      createdAt: ctx.clock.now(),
    });
    // The secret stays out of the audit log.
    await auditCommand(ctx, replaced ? "component.replace" : "component.add", `component:${domain}`);
    const shown = input.secret === undefined ? `; its secret (shown once): ${secret}` : "";
    return {
      message: `${replaced ? "replaced the secret of" : "added"} component ${domain}${shown}`,
      data: { domain, replaced, ...(input.secret === undefined ? { secret } : {}) },
    };
  },
});

export const componentRemove = defineCommand({
  name: ["component", "remove"],
  description: "Stop accepting a component; a connected one is disconnected within a second",
  args: [{ name: "domain", description: "the component's domain", positional: true }],
  input: z.object({ domain: z.string().min(1) }),
  output: z.object({ domain: componentDomainField }),
  mutates: true,
  async run(ctx, input) {
    const domain = componentDomain(ctx, input.domain);
    if (!(await new ComponentRegistry(ctx.storage).remove(domain)))
      throw new CommandError(`no component ${domain}`, 404);
    await auditCommand(ctx, "component.remove", `component:${domain}`);
    return { message: `removed component ${domain}`, data: { domain } };
  },
});

export const componentList = defineCommand({
  name: ["component", "list"],
  description: "The components this server accepts",
  args: [],
  input: z.object({}),
  output: z.object({
    components: z.array(
      z.object({
        domain: componentDomainField,
        createdAt: isoInstant.describe("when it was added or its secret last replaced"),
      }),
    ),
  }),
  mutates: false,
  async run(ctx) {
    const list = await new ComponentRegistry(ctx.storage).list();
    const rows = list.map((c) => ({ domain: c.domain, createdAt: new Date(c.createdAt).toISOString() }));
    return {
      message:
        rows.length === 0
          ? "(no components)"
          : rows.map((r) => `${r.domain}  added ${r.createdAt}`).join("\n"),
      data: { components: rows },
    };
  },
});

export const componentCommands = [componentAdd, componentRemove, componentList];
