/**
 * Licensed client access. Before authentication the server offers a <licence/> stream
 * feature with a nonce; a licensed client answers with an Ed25519 proof bound to the
 * domain, the stream and the TLS channel. Unlicensed clients are allowed (open), warned
 * by a headline (warn) or refused before their password is used (enforce), following the
 * policy's schedule and rollout; licensed apps must meet their version rules in every
 * mode. Decisions are re-applied to live sessions at every scheduled instant and within
 * a polling interval of any registry change (also one made by the CLI in another process).
 */
import { z } from "zod";
import type { CommandDefinition } from "../../core/commands.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import type { ClientSession } from "../../core/session.js";
import type { Instant, ProofInput } from "../../licensing/index.js";
import {
  accountMode,
  type ClientInfo,
  isFirstParty,
  isLicensed,
  type KeyAddressFigure,
  KeyAddressWatch,
  LicensingRegistry,
  type LicensingSnapshot,
  loadTicketKey,
  NS_LICENCE,
  TicketBook,
} from "../../licensing/index.js";
import { askClientVersion } from "./client-version.js";
import { licensingCommands } from "./commands.js";
import { type Admission, Enforcement, type FirstPartyGrant, type LicensingCounters } from "./enforcement.js";
import { licensingMetrics } from "./metrics.js";
import { clientInfoOf, describeClient, setClientInfo } from "./session-info.js";
import { LicensingStats } from "./stats.js";
import { statsCommands } from "./stats-commands.js";
import { licenceStreamFeature } from "./stream-feature.js";
import { UnlicensedWarnings } from "./warnings.js";

export {
  type ClientInfo,
  NS_LICENCE,
  type ProofClaim,
  type ProofContext,
  type ProofInput,
  type ProofVerdict,
  proofSignedBytes,
  type Refusal,
  verifyProof,
  WEB_CHAT_CLIENT_ID,
} from "../../licensing/index.js";
export type { Admission, FirstPartyGrant, LicensingCounters } from "./enforcement.js";
export { clientInfoOf } from "./session-info.js";

export const LicensingOptions = z.object({
  /** How often the stored registry revision is checked (a change applies within this, plus a re-evaluation). */
  pollIntervalMs: z.number().int().min(10).max(60_000).default(250),
  /** Least time between two warning headlines to one account in warn mode. */
  warnIntervalHours: z.number().positive().default(24),
  /** Ask unlicensed clients their software version (XEP-0092) after binding, for statistics (unverified). */
  queryClientVersion: z.boolean().default(false),
  /** How long to wait for that answer. */
  clientVersionTimeoutMs: z.number().int().min(100).default(10_000),
  /** Failed proofs (bad signature, unknown or revoked key) from one address before its proofs are refused unread. */
  maxProofFailuresPerAddress: z.number().int().min(1).default(10),
  /** The window those failures are counted in. */
  proofFailureWindowSeconds: z.number().positive().default(300),
  /** How often this server writes its live client figures for `switchboard stats clients`. */
  statsIntervalMs: z.number().int().min(100).default(5_000),
  /** Days of daily client figures kept. */
  statsRetentionDays: z.number().int().min(1).default(90),
  /**
   * Hours a licence ticket is accepted after the signed proof that earned it (0: no tickets).
   * A ticket lets a returning client prove its licence with an HMAC instead of a signature.
   */
  ticketLifetimeHours: z
    .number()
    .min(0)
    .max(24 * 90)
    .default(24),
  /** The window in which distinct addresses per app key are counted (metrics, alert). */
  keyAddressWindowMinutes: z.number().positive().default(60),
  /**
   * Distinct addresses one app key may prove from in a window before the server logs a
   * warning (0: no warning; the figures are in the metrics either way). Set it well above
   * the number of addresses the app's users come from in a window.
   */
  keyAddressAlert: z.number().int().min(0).default(0),
  /** Names this server's live figures (default: cluster.node, else the host name). */
  nodeId: z.string().min(1).optional(),
});
export type LicensingOptions = z.infer<typeof LicensingOptions>;

/** What the module offers other modules (metrics, statistics, a SASL2 carrier) and tests. */
export interface LicensingApi {
  /** Reloads the registry if it changed and re-evaluates every live session now. */
  recheck(): Promise<void>;
  /**
   * Reloads the registry only if its revision changed (one read otherwise), re-evaluating
   * then; for decisions that must not wait for the next poll (a link being set up).
   */
  refresh(): Promise<void>;
  /**
   * Calls `listener` after every re-evaluation: when the registry changed (also from another
   * process, within the polling interval), at each scheduled instant, and on recheck().
   * Returns its removal.
   */
  onEvaluated(listener: () => void): () => void;
  /** A copy of the counters, for metrics. */
  counters(): LicensingCounters;
  snapshot(): LicensingSnapshot;
  /** The next instant the module wakes at by itself (policy stage, licence boundary, key revocation). */
  nextCheckAt(): Instant | undefined;
  /** Distinct addresses per app key in the current and the previous window. */
  keyAddresses(): KeyAddressFigure[];
  /** Verifies a proof carried by something else than the stream feature (e.g. SASL2) and records it. */
  admitProof(session: ClientSession, input: ProofInput, source: ClientInfo["source"]): Admission;
  /**
   * A connection of the server's own web chat, recognised by the grant its page holds: the
   * policy does not apply to it for the account the grant covers (docs/licensing-protocol.md §8).
   */
  admitFirstParty(session: ClientSession, grant: FirstPartyGrant): void;
}

/** The licensing API of a running server (`server.services.apis`), if the module is loaded. */
export function licensingApi(apis: Map<string, unknown>): LicensingApi | undefined {
  return apis.get("licensing") as LicensingApi | undefined;
}

export default defineModule<LicensingOptions>({
  name: "licensing",
  description:
    "Licensed client access: proofs at login, warn and enforce modes, scheduled cutoffs, version rules",
  xeps: [
    {
      xep: "0092",
      version: "1.1",
      status: "partial",
      notes: "asks unlicensed clients their software version after binding, for statistics",
    },
  ],
  options: LicensingOptions,
  commands: [...licensingCommands, ...statsCommands] as CommandDefinition<never>[],
  async setup(ctx) {
    const { options, clock, log } = ctx;
    const tickets =
      options.ticketLifetimeHours > 0
        ? new TicketBook(
            await loadTicketKey(ctx.storage, clock.now()),
            options.ticketLifetimeHours * 3_600_000,
          )
        : undefined;
    const keyAddresses = new KeyAddressWatch({
      windowMs: options.keyAddressWindowMinutes * 60_000,
      alertAt: options.keyAddressAlert,
      maxTracked: Math.max(10_000, options.keyAddressAlert),
      now: () => clock.now(),
      onAlert: (figure) => {
        enforcement.counters.keyAddressAlerts++;
        log.warn(
          { ...figure, windowMinutes: options.keyAddressWindowMinutes },
          "a licence key is proving from unusually many addresses: it may have been extracted from its client",
        );
      },
    });
    const enforcement = new Enforcement({
      domain: ctx.domain,
      clock,
      sessions: ctx.sessions,
      log,
      registry: new LicensingRegistry(ctx.storage, clock),
      maxProofFailuresPerAddress: options.maxProofFailuresPerAddress,
      proofFailureWindowMs: options.proofFailureWindowSeconds * 1000,
      keyAddresses,
      ...(tickets
        ? {
            tickets,
            onRegistryChange: async () => tickets.useKey(await loadTicketKey(ctx.storage, clock.now())),
          }
        : {}),
    });
    // In a cluster, every session's directory entry says what it runs (its licence among it):
    // session limits count every node's sessions, statistics every node's clients.
    ctx.sessions.peers?.describeClients(describeClient);
    await enforcement.start();
    ctx.onUnload(() => enforcement.stop());
    const warnings = new UnlicensedWarnings({
      domain: ctx.domain,
      clock,
      store: ctx.storage.keyValue("licensing"),
      intervalMs: options.warnIntervalHours * 3_600_000,
    });

    ctx.addFeature(NS_LICENCE, "host");
    const licenceFeature = licenceStreamFeature(enforcement, ctx.domain);
    ctx.addStreamFeature(licenceFeature);

    // Before the password is used: the claimed account decides the rollout and exemptions.
    ctx.hook("c2s/pre-sasl", ({ session, claimedUsername, refuse }) => {
      enforcement.checkBeforeAuth(session, claimedUsername, refuse);
    });
    // The authenticated account may differ from the claimed one (or none was readable).
    ctx.hook(
      "c2s/authenticated",
      ({ session, username, refuse }) => {
        enforcement.checkBeforeAuth(session, username, refuse, true);
      },
      100,
    );

    // Each node of a cluster writes its own live figures (the readers add them up).
    const nodeId = options.nodeId ?? ctx.config.cluster?.node;
    const stats = new LicensingStats({
      storage: ctx.storage,
      clock,
      sessions: ctx.sessions,
      snapshot: () => enforcement.snapshot(),
      intervalMs: options.statsIntervalMs,
      retentionDays: options.statsRetentionDays,
      ...(nodeId !== undefined ? { nodeId } : {}),
      log,
    });
    stats.install(ctx);

    const recordVersion = async (session: ClientSession, jid: Jid) => {
      const answer = await askClientVersion(ctx.router, jid, options.clientVersionTimeoutMs);
      const info = clientInfoOf(session);
      // A XEP-0092 answer names a version too: it replaces what a SASL2 user-agent said.
      if (!answer || session.closed || (info?.source !== "none" && info?.source !== "sasl2")) return;
      setClientInfo(session, {
        clientId: answer.name,
        ...(answer.version !== undefined ? { version: answer.version } : {}),
        verified: false,
        source: "xep-0092",
        ok: false,
      });
      stats.onClientInfo(session);
      ctx.sessions.updated(session);
    };

    // High priority: a refused session is closed before other modules act on it.
    ctx.hook(
      "session/bound",
      async ({ session }) => {
        licenceFeature.forget(session);
        const bound = enforcement.onBound(session);
        if (!bound || isLicensed(clientInfoOf(session)) || isFirstParty(clientInfoOf(session))) return;
        const { policy } = enforcement.snapshot();
        if (accountMode(policy, clock.now(), session.username) === "warn") {
          try {
            if (await warnings.maybeWarn(session, policy)) enforcement.counters.warningsSent++;
          } catch (err) {
            // A warning that cannot be sent must not cost the user the session.
            log.warn({ err, account: session.username }, "could not send the licence warning");
          }
        }
        if (options.queryClientVersion && session.jid && !session.closed) {
          recordVersion(session, session.jid).catch((err) =>
            log.warn({ err }, "client version query failed"),
          );
        }
      },
      100,
    );

    ctx.hook("session/ended", ({ session }) => {
      enforcement.onEnded(session);
    });

    for (const metric of licensingMetrics({
      sessions: ctx.sessions,
      clock,
      counters: () => enforcement.counters,
      snapshot: () => enforcement.snapshot(),
      keyAddresses: () => keyAddresses.figures(),
    }))
      ctx.metric(metric);

    ctx.setInterval(() => {
      enforcement.poll().catch((err) => log.error({ err }, "licensing registry poll failed"));
    }, options.pollIntervalMs);

    ctx.provide<LicensingApi>({
      recheck: () => enforcement.recheck(),
      refresh: () => enforcement.poll(),
      onEvaluated: (listener) => enforcement.onEvaluated(listener),
      counters: () => structuredClone(enforcement.counters),
      snapshot: () => enforcement.snapshot(),
      nextCheckAt: () => enforcement.nextCheckAt(),
      keyAddresses: () => keyAddresses.figures(),
      admitFirstParty: (session, grant) => enforcement.admitFirstParty(session, grant),
      admitProof: (session, input, source) => {
        const admission = enforcement.admitProof(session, input);
        if (admission.ok) setClientInfo(session, { ...admission.info, source });
        return admission;
      },
    });
  },
});
