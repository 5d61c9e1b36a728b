/**
 * Interconnection licences on live links. A component (XEP-0114 gateway) needs, besides its
 * secret, a gateway licence for its domain wherever the licensing schedule puts that domain in
 * `enforce`; the same schedule warns an unlicensed gateway first (once a day a headline to
 * the component: "this link stops on …") and detaches it at its cutoff. A suspended, revoked or
 * expired licence detaches the component in every mode. Decisions are re-applied whenever the
 * licensing module re-evaluates its sessions (a registry change — also one made by the CLI in
 * another process — within its polling interval, and every scheduled instant), so a live link
 * goes within a second without a restart. Peering (federation) follows in peering.ts.
 */
import { z } from "zod";
import type { CommandDefinition } from "../../core/commands.js";
import { defineModule } from "../../core/module.js";
import { x } from "../../core/xml/element.js";
import type { InterconnectDecision, InterconnectScope, Refusal } from "../../licensing/index.js";
import {
  domainLicenceStanding,
  interconnectDecision,
  interconnectWarningElement,
  interconnectWarningText,
  NS_LICENCE,
} from "../../licensing/index.js";
import type { ComponentRefusal, ComponentsApi } from "../components/index.js";
import type { LicensingApi } from "../licensing/index.js";
import type { InterconnectApi, LinkLicence, LinkView } from "./api.js";
import { linkCommands } from "./commands.js";
import { WarningLedger } from "./warnings.js";

export type { InterconnectApi, LinkKind, LinkLicence, LinkView } from "./api.js";

export const InterconnectOptions = z.object({
  /** Least time between two warnings to one unlicensed link (a component, a remote user) in warn mode. */
  warnIntervalHours: z.number().positive().default(24),
  /** How often live links are checked for warnings that are due again. */
  sweepIntervalMs: z.number().int().min(100).max(3_600_000).default(60_000),
});
export type InterconnectOptions = z.infer<typeof InterconnectOptions>;

/** The application condition of a refusal, in the licensing namespace (docs/licensing-protocol.md §10). */
export function refusalCondition(r: Refusal): ComponentRefusal {
  return { text: r.text, condition: x(r.reason, { xmlns: NS_LICENCE, ...r.details }) };
}

export default defineModule<InterconnectOptions>({
  name: "interconnect",
  description:
    "Interconnection licences: gateway licences for components, warnings and cutoffs on live links",
  options: InterconnectOptions,
  commands: linkCommands as CommandDefinition<never>[],
  setup(ctx) {
    const { clock, log, options, router } = ctx;
    const licensing = ctx.api<LicensingApi>("licensing");
    const components = () => ctx.api<ComponentsApi>("components");
    const counters = {
      refused: new Map<string, number>(),
      detached: new Map<string, number>(),
      warnings: new Map<InterconnectScope, number>(),
    };
    const bump = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);

    const decide = (scope: InterconnectScope, domain: string): InterconnectDecision | undefined =>
      licensing && interconnectDecision(licensing.snapshot(), scope, domain, clock.now());

    const standing = (scope: InterconnectScope, domain: string, applies: boolean): LinkLicence => {
      const now = clock.now();
      const snapshot = licensing?.snapshot();
      const s = snapshot && domainLicenceStanding(snapshot, scope, domain, now);
      const d = decide(scope, domain);
      return {
        scope,
        applies: applies && licensing !== undefined,
        status: s?.status ?? "none",
        ...(s ? { licenceId: s.licence.id } : {}),
        mode: d?.admitted ? d.mode : "enforce",
        ...(d?.admitted && d.cutoff !== undefined ? { cutoff: d.cutoff } : {}),
      };
    };

    const ledger = new WarningLedger(ctx.storage, clock, options.warnIntervalHours * 3_600_000);

    /** A headline from `from` to `to` saying when the link stops. */
    const warning = (
      scope: InterconnectScope,
      domain: string,
      from: string,
      to: string,
      d: InterconnectDecision & { admitted: true },
    ) => {
      const infoUrl = licensing?.snapshot().policy.infoUrl;
      return x(
        "message",
        { type: "headline", from, to, id: `interconnect-warning-${clock.now().toString(36)}` },
        x(
          "subject",
          null,
          scope === "peering" ? "This federation link is not licensed" : "This gateway is not licensed",
        ),
        x("body", null, interconnectWarningText(scope, domain, from, d.cutoff, infoUrl)),
        interconnectWarningElement({
          reason: scope === "peering" ? "unlicensed-peer" : "unlicensed-gateway",
          domain,
          cutoff: d.cutoff,
          infoUrl,
        }),
      );
    };

    /** An attached component without a licence in warn mode: told once per interval, and logged. */
    const warnGateway = (domain: string) => {
      const d = decide("gateway", domain);
      if (!d?.admitted || d.licenceId !== undefined || d.mode !== "warn") return;
      ledger
        .maybeWarn(`gateway:${domain}`, () => {
          bump(counters.warnings, "gateway");
          log.warn(
            { domain, cutoff: d.cutoff === undefined ? undefined : new Date(d.cutoff).toISOString() },
            "a gateway without a gateway licence is attached; it is detached at the cutoff",
          );
          const sent = router.send(warning("gateway", domain, ctx.domain, domain, d));
          if (sent) sent.catch((err) => log.warn({ err, domain }, "could not warn a gateway"));
        })
        .catch((err) => log.warn({ err, domain }, "could not record a gateway warning"));
    };

    if (licensing) {
      // After the secret: the licence and the schedule decide whether the component may attach.
      ctx.hook("component/authorize", async (ev) => {
        if (ev.refusal) return true;
        // A licence granted or revoked a moment ago counts (the poll may not have seen it yet).
        await licensing.refresh();
        const d = decide("gateway", ev.domain);
        if (d && !d.admitted) {
          bump(counters.refused, `gateway\n${d.reason}`);
          ev.refuse(refusalCondition(d));
          return true;
        }
        return undefined;
      });
      ctx.hook("component/attached", ({ domain }) => {
        warnGateway(domain);
      });
    } else {
      log.warn("the licensing module is not loaded: gateway and peering licences are not applied");
    }

    /** Applies the decisions in force to every live link (and sends the warnings that are due). */
    const evaluate = () => {
      const api = components();
      for (const link of api?.links() ?? []) {
        const d = decide("gateway", link.domain);
        if (!d) continue;
        if (!d.admitted) {
          bump(counters.detached, `gateway\n${d.reason}`);
          log.info(
            { domain: link.domain, reason: d.reason },
            "detaching a gateway refused by the licensing policy",
          );
          api!.detach(link.domain, refusalCondition(d));
        } else warnGateway(link.domain);
      }
    };
    if (licensing) {
      ctx.onUnload(licensing.onEvaluated(evaluate));
      ctx.setInterval(evaluate, options.sweepIntervalMs);
    }

    const links = (): LinkView[] =>
      (components()?.links() ?? []).map((l) => ({
        kind: "component" as const,
        domain: l.domain,
        localDomain: ctx.domain,
        direction: "in" as const,
        method: "secret",
        since: l.since,
        stanzasIn: l.stanzasIn,
        stanzasOut: l.stanzasOut,
        address: l.address,
        licence: standing("gateway", l.domain, true),
      }));
    ctx.provide<InterconnectApi>({ links });

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
      help: "Warnings sent to unlicensed links in warn mode, by scope",
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
