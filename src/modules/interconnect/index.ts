/**
 * Interconnection licences on live links. A component (XEP-0114 gateway) needs, besides its
 * secret, a gateway licence for its domain wherever the licensing schedule puts that domain in
 * `enforce`; under the `licensed` federation policy a remote server's domain needs a peering
 * licence the same way. The schedule warns first (a gateway, or a remote server's users, get a
 * headline once a day: "this link stops on …") and cuts the link at its cutoff; a suspended,
 * revoked or expired licence closes the link in every mode. Decisions are re-applied whenever
 * the licensing module re-evaluates its sessions (a registry change — also one made by the CLI
 * in another process — within its polling interval, and every scheduled instant), so a live
 * link goes within a second without a restart.
 */
import os from "node:os";
import { z } from "zod";
import type { CommandDefinition } from "../../core/commands.js";
import { defineModule } from "../../core/module.js";
import type { LicensingApi } from "../licensing/index.js";
import type { InterconnectApi, LinkView } from "./api.js";
import { LINKS_STORE, linkCommands, type PublishedLinks } from "./commands.js";
import { installGateways } from "./gateways.js";
import { installPeering } from "./peering.js";
import { bump, Interconnect } from "./shared.js";
import { WarningLedger } from "./warnings.js";

export type { InterconnectApi, LinkKind, LinkLicence, LinkView } from "./api.js";

export const InterconnectOptions = z.object({
  /** Least time between two warnings to one unlicensed link (a component, a remote user) in warn mode. */
  warnIntervalHours: z.number().positive().default(24),
  /** How often live links are checked for warnings that are due again. */
  sweepIntervalMs: z.number().int().min(100).max(3_600_000).default(60_000),
  /** How often this server writes its live links for `switchboard link list` run from the CLI. */
  publishIntervalMs: z.number().int().min(100).max(60_000).default(2000),
});
export type InterconnectOptions = z.infer<typeof InterconnectOptions>;

export default defineModule<InterconnectOptions>({
  name: "interconnect",
  description:
    "Interconnection licences: gateway licences for components and peering licences for federation, with warnings and cutoffs on live links",
  options: InterconnectOptions,
  commands: linkCommands as CommandDefinition<never>[],
  setup(ctx) {
    const { clock, log, options } = ctx;
    const licensing = ctx.api<LicensingApi>("licensing");
    if (!licensing) {
      // Federation under `licensed` then admits nobody (the s2s module's own rule); components attach by secret.
      log.warn("the licensing module is not loaded: gateway and peering licences are not applied");
      ctx.provide<InterconnectApi>({ links: () => [] });
      return;
    }
    const ledger = new WarningLedger(ctx.storage, clock, options.warnIntervalHours * 3_600_000);
    const ic = new Interconnect(licensing, ledger, clock, log);
    const gateways = installGateways(ctx, ic);
    const peering = installPeering(ctx, ic);

    const evaluate = () => {
      gateways.evaluate();
      peering.evaluate();
    };
    ctx.onUnload(licensing.onEvaluated(evaluate));
    ctx.setInterval(evaluate, options.sweepIntervalMs);

    const links = (): LinkView[] => [...gateways.links(), ...peering.links()];
    ctx.provide<InterconnectApi>({ links });

    // The CLI has no live server: it reads what each server last wrote here.
    const published = ctx.storage.documents<PublishedLinks>(LINKS_STORE);
    const node = `${os.hostname()}:${process.pid}`;
    let publishing = false;
    ctx.setInterval(() => {
      if (publishing) return;
      publishing = true;
      published
        .put(node, { node, at: clock.now(), intervalMs: options.publishIntervalMs, links: links() })
        .catch((err) => log.warn({ err }, "could not write the live links"))
        .finally(() => {
          publishing = false;
        });
    }, options.publishIntervalMs);
    ctx.onUnload(async () => {
      await published.delete(node).catch(() => undefined);
    });

    const { counters } = ic;
    const split = (key: string) => key.split("\n") as [string, string];
    ctx.metric({
      name: "switchboard_interconnect_refused_total",
      help: "Links refused by interconnection licences when they tried to start, by scope and condition",
      type: "counter",
      labelNames: ["scope", "reason"],
      collect: () =>
        [...counters.refused].map(([k, n]) => {
          const [scope, reason] = split(k);
          return [{ scope, reason }, n] as const;
        }),
    });
    ctx.metric({
      name: "switchboard_interconnect_detached_total",
      help: "Live links closed because their licence went or their cutoff came, by scope and condition",
      type: "counter",
      labelNames: ["scope", "reason"],
      collect: () =>
        [...counters.detached].map(([k, n]) => {
          const [scope, reason] = split(k);
          return [{ scope, reason }, n] as const;
        }),
    });
    ctx.metric({
      name: "switchboard_interconnect_warnings_total",
      help: "Warnings sent to unlicensed links in warn mode (to a gateway, or to a remote server's user), by scope",
      type: "counter",
      labelNames: ["scope"],
      collect: () => [...counters.warnings].map(([scope, n]) => [{ scope }, n] as const),
    });
    ctx.metric({
      name: "switchboard_interconnect_links",
      help: "Live interconnection links, by kind, domain and licence status",
      type: "gauge",
      labelNames: ["kind", "domain", "status"],
      collect: () => {
        const count = new Map<string, number>();
        for (const l of links()) bump(count, `${l.kind}\n${l.domain}\n${l.licence.status}`);
        return [...count].map(([k, n]) => {
          const [kind, domain, status] = k.split("\n") as [string, string, string];
          return [{ kind, domain, status }, n] as const;
        });
      },
    });
  },
});
