/**
 * Peering licences on federation, under the `licensed` federation policy: every link passes
 * `s2s/authorize`, where the domain's peering licence and the schedule decide; live links with
 * a domain are closed when the decision turns (closeLinks), and in warn mode the remote
 * server's users are told, each once per interval, when the link stops — a headline from our
 * domain when they send a message or presence over it. Under `open` and `allowlist` the
 * configuration decides and licences are not looked at.
 */
import type { ServerEvents } from "../../core/events.js";
import type { Jid } from "../../core/jid.js";
import type { ModuleContext } from "../../core/module.js";
import type { InterconnectDecision } from "../../licensing/index.js";
import type { S2SApi } from "../s2s/api.js";
import type { LinkView } from "./api.js";
import { bump, type Interconnect, refusalCondition } from "./shared.js";

/** Presence types a person sends (not probes, errors or unavailability). */
const PERSONAL_PRESENCE = new Set<string | undefined>([undefined, "subscribe", "subscribed"]);

export function installPeering(ctx: ModuleContext<unknown>, ic: Interconnect) {
  const { log, router } = ctx;
  const s2s = () => ctx.api<S2SApi>("s2s");
  const licensed = () => s2s()?.policy === "licensed";
  /** Decisions by domain for the warning check on every federated stanza, dropped at each re-evaluation. */
  const cache = new Map<string, InterconnectDecision>();
  const decide = (domain: string) => {
    let d = cache.get(domain);
    if (!d) {
      d = ic.decide("peering", domain);
      if (cache.size > 10_000) cache.clear();
      cache.set(domain, d);
    }
    return d;
  };

  ctx.hook("s2s/authorize", async (ev) => {
    if (ev.policy !== "licensed" || ev.decision) return undefined;
    await ic.licensing.refresh();
    cache.delete(ev.domain);
    const d = ic.decide("peering", ev.domain);
    if (!d.admitted) {
      bump(ic.counters.refused, `peering\n${d.reason}`);
      ev.refuse(refusalCondition(d));
      return true;
    }
    ev.allow();
    return true;
  });

  /** A remote user wrote to one of ours over a link in warn mode: tell them, once per interval. */
  const onRemoteStanza = ({ stanza, from, to }: ServerEvents["message/bare"]): undefined => {
    if (from.local === "" || router.isLocalDomain(from.domain) || router.routeOf(from.domain)) return;
    if (
      stanza.name === "message"
        ? stanza.attrs.type === "error" || stanza.attrs.type === "headline"
        : !PERSONAL_PRESENCE.has(stanza.attrs.type)
    )
      return;
    if (!licensed()) return;
    const d = decide(from.domain);
    if (!d.admitted || d.licenceId !== undefined || d.mode !== "warn") return;
    warnUser(from.bare(), to.domain, d as InterconnectDecision & { admitted: true });
    return undefined;
  };
  const warnUser = (user: Jid, localDomain: string, d: InterconnectDecision & { admitted: true }) => {
    const remote = user.domain;
    ic.ledger
      .maybeWarn(`peering:${user.toString()}`, () => {
        bump(ic.counters.warnings, "peering");
        const sent = router.send(ic.warning("peering", remote, localDomain, user.toString(), d));
        if (sent) sent.catch((err) => log.warn({ err, remote }, "could not warn a federated user"));
      })
      .catch((err) => log.warn({ err, remote }, "could not record a peering warning"));
  };
  // Before delivery, never claiming: the stanza goes on as usual.
  for (const event of ["message/bare", "message/full", "presence/bare", "presence/full"] as const) {
    ctx.hook(event, onRemoteStanza, 1000);
  }

  return {
    /** Closes the links of every domain the decisions now refuse. */
    evaluate(): void {
      cache.clear();
      const api = s2s();
      if (api?.policy !== "licensed") return;
      const refused = new Map<string, InterconnectDecision & { admitted: false }>();
      for (const link of api.links()) {
        if (refused.has(link.domain)) continue;
        const d = ic.decide("peering", link.domain);
        if (!d.admitted) refused.set(link.domain, d);
      }
      for (const [domain, d] of refused) {
        const closed = api.closeLinks(domain, refusalCondition(d));
        for (let i = 0; i < closed; i++) bump(ic.counters.detached, `peering\n${d.reason}`);
        log.info(
          { remote: domain, reason: d.reason, closed },
          "closing federation links refused by the licensing policy",
        );
      }
    },
    links(): LinkView[] {
      const api = s2s();
      if (!api) return [];
      const applies = api.policy === "licensed";
      return api.links().map((l) => ({
        kind: "s2s" as const,
        domain: l.domain,
        localDomain: l.localDomain,
        direction: l.direction,
        method: l.method,
        since: l.since,
        stanzasIn: l.stanzasIn,
        stanzasOut: l.stanzasOut,
        address: l.address,
        licence: ic.standing("peering", l.domain, applies),
      }));
    },
  };
}
