/**
 * Gateway licences on components: after its secret a component passes `component/authorize`,
 * where the licence and the schedule decide; an attached one is detached when the decision
 * turns, and warned once per interval in warn mode (a headline to its domain, and a log line).
 */
import type { ModuleContext } from "../../core/module.js";
import type { ComponentsApi } from "../components/index.js";
import type { LinkView } from "./api.js";
import { bump, type Interconnect, refusalCondition } from "./shared.js";

export function installGateways(ctx: ModuleContext<unknown>, ic: Interconnect) {
  const { log, router } = ctx;
  const components = () => ctx.api<ComponentsApi>("components");

  /** An attached component without a licence in warn mode: told once per interval, and logged. */
  const warn = (domain: string) => {
    const d = ic.warned("gateway", domain);
    if (!d) return;
    ic.ledger
      .maybeWarn(`gateway:${domain}`, () => {
        bump(ic.counters.warnings, "gateway");
        log.warn(
          { domain, cutoff: d.cutoff === undefined ? undefined : new Date(d.cutoff).toISOString() },
          "a gateway without a gateway licence is attached; it is detached at the cutoff",
        );
        const sent = router.send(ic.warning("gateway", domain, ctx.domain, domain, d));
        if (sent) sent.catch((err) => log.warn({ err, domain }, "could not warn a gateway"));
      })
      .catch((err) => log.warn({ err, domain }, "could not record a gateway warning"));
  };

  // After the secret: the licence and the schedule decide whether the component may attach.
  ctx.hook("component/authorize", async (ev) => {
    if (ev.refusal) return true;
    // A licence granted or revoked a moment ago counts (the poll may not have seen it yet).
    await ic.licensing.refresh();
    const d = ic.decide("gateway", ev.domain);
    if (d.admitted) return undefined;
    bump(ic.counters.refused, `gateway\n${d.reason}`);
    ev.refuse(refusalCondition(d));
    return true;
  });
  ctx.hook("component/attached", ({ domain }) => {
    warn(domain);
  });

  return {
    /** Applies the decisions in force to every attached component (and sends the warnings due). */
    evaluate(): void {
      const api = components();
      for (const link of api?.links() ?? []) {
        const d = ic.decide("gateway", link.domain);
        if (!d.admitted) {
          bump(ic.counters.detached, `gateway\n${d.reason}`);
          log.info(
            { domain: link.domain, reason: d.reason },
            "detaching a gateway refused by the licensing policy",
          );
          api!.detach(link.domain, refusalCondition(d));
        } else warn(link.domain);
      }
    },
    links(): LinkView[] {
      return (components()?.links() ?? []).map((l) => ({
        kind: "component" as const,
        domain: l.domain,
        localDomain: ctx.domain,
        direction: "in" as const,
        method: "secret",
        since: l.since,
        stanzasIn: l.stanzasIn,
        stanzasOut: l.stanzasOut,
        address: l.address,
        licence: ic.standing("gateway", l.domain, true),
      }));
    },
  };
}
