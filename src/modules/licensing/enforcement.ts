/**
 * Enforcement: admits or refuses clients at login (proof, SASL start, authentication,
 * binding) and keeps every live session under the decisions in force. The registry
 * snapshot is reloaded when its revision changes (polled, so a change made by the CLI
 * in another process counts too) and every live session is then re-evaluated; a timer
 * also wakes at the next instant a decision can change by itself (a policy stage, a
 * licence starting or ending), so a scheduled cutoff happens at its instant. All of it
 * is computed from the stored schedule and the clock, so a restart changes nothing.
 */
import type { Logger } from "pino";
import type { Clock } from "../../core/clock.js";
import type { SaslRefusal } from "../../core/events.js";
import type { PeerSession } from "../../core/peer-sessions.js";
import { FailureLimiter } from "../../core/rate-limit.js";
import type { ClientSession } from "../../core/session.js";
import type { SessionDirectory } from "../../core/session-directory.js";
import type {
  ClientApp,
  Instant,
  IssuedTicket,
  KeyAddressWatch,
  Licence,
  LicensingSnapshot,
  RefusalReason,
  TicketBook,
} from "../../licensing/index.js";
import {
  accountMode,
  type ClientInfo,
  isExempt,
  isLicensed,
  licensedStanding,
  nextChangeAt,
  type ProofInput,
  REFUSAL_SASL_CONDITION,
  type Refusal,
  recommendedFor,
  refusalCondition,
  refusalError,
  refusalNotice,
  sessionLimitRefusal,
  sessionRefusal,
  UNLICENSED,
  unlicensedRefusal,
  verifyProof,
  versionRefusal,
  WEB_CHAT_CLIENT_ID,
} from "../../licensing/index.js";
import { clientInfoOf, setClientInfo, unprovenClient } from "./session-info.js";

/** Proof refusals that suggest forgery or a leaked key; these count against the address. */
const SUSPICIOUS: ReadonlySet<RefusalReason> = new Set(["bad-proof", "unknown-key", "key-revoked"]);
/**
 * Refusals of a good proof for what the operator decided about the app (its licence, its
 * versions, its session limit): an exempt account is spared them, so while exemptions exist
 * they wait until the account is known.
 */
const SPARED_FOR_EXEMPT: ReadonlySet<RefusalReason> = new Set([
  "licence-revoked",
  "licence-suspended",
  "licence-expired",
  "unlicensed-client",
  "version-too-old",
  "version-blocked",
  "too-many-sessions",
]);
/** No sessions of other nodes (a single server). */
const NO_PEERS: ReadonlySet<PeerSession> = new Set();
/** Node timers hold at most 2^31-1 ms; a later instant is reached in several waits. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LicensingCounters {
  /** Nonces handed out in stream features. */
  noncesIssued: number;
  proofsAccepted: number;
  /** Of those, proofs made with a ticket instead of a signature. */
  ticketProofsAccepted: number;
  ticketsIssued: number;
  /** Tickets not accepted (expired or not this network's); the client may sign instead. */
  ticketsRefused: number;
  /** Proofs refused at login, by condition. */
  proofsRefused: Partial<Record<RefusalReason, number>>;
  /** Proofs refused unread because their address failed too often. */
  proofsRateLimited: number;
  /** Logins refused for want of a licence (enforce mode), before the password was used. */
  unlicensedRefused: number;
  /** Sessions closed after login (at binding, at a cutoff, after a registry change), by condition. */
  sessionsClosed: Partial<Record<RefusalReason, number>>;
  warningsSent: number;
  /** Notices sent to sessions of clients without a proven licence just before they were closed. */
  refusalNotices: number;
  /** Times one app key passed the configured number of distinct addresses in a window. */
  keyAddressAlerts: number;
  snapshotReloads: number;
  /** Re-evaluations of every live session. */
  rechecks: number;
}

export interface EnforcementDeps {
  /** The server's domain: the sender of the notice a closed session gets. */
  domain: string;
  clock: Clock;
  sessions: SessionDirectory;
  log: Logger;
  registry: { revision(): Promise<number>; snapshot(): Promise<LicensingSnapshot> };
  maxProofFailuresPerAddress: number;
  proofFailureWindowMs: number;
  /** Issues and accepts licence tickets; without it, none are. */
  tickets?: TicketBook;
  /** Runs after a new registry revision was loaded (e.g. to pick up a rotated ticket key). */
  onRegistryChange?: () => Promise<void>;
  /** Counts the addresses each app key proves from. */
  keyAddresses?: KeyAddressWatch;
}

/**
 * What the server's own web chat holds for one connection: a grant the server gave the page
 * (bound to the browser, its address and, from the first login on, one account).
 */
export interface FirstPartyGrant {
  /** The web chat's version, for statistics. */
  version: string;
  /**
   * Whether the grant covers `username`: asked with the claimed account before the password
   * is used (`verified` false) and with the authenticated one (`verified` true), when an
   * unbound grant binds to it.
   */
  allows(username: string, verified: boolean): boolean;
}

/** The outcome of a proof, whatever carried it. */
export type Admission =
  | {
      ok: true;
      info: ClientInfo;
      recommended?: { version: string; url: string | undefined };
      /** The proof was made with a ticket (no new ticket is issued for it). */
      resumed: boolean;
      /**
       * The proof is good but the app is refused unless the account is exempt: decided when
       * the account is known, before its password is used (checkBeforeAuth).
       */
      deferred?: Refusal;
    }
  | { ok: false; refusal: Refusal }
  /** The ticket was not accepted; the stream may still prove with a signature. */
  | { ok: false; ticketRefused: string };

const bump = (m: Partial<Record<RefusalReason, number>>, r: RefusalReason) => {
  m[r] = (m[r] ?? 0) + 1;
};

export class Enforcement {
  readonly counters: LicensingCounters = {
    noncesIssued: 0,
    proofsAccepted: 0,
    ticketProofsAccepted: 0,
    ticketsIssued: 0,
    ticketsRefused: 0,
    proofsRefused: {},
    proofsRateLimited: 0,
    unlicensedRefused: 0,
    sessionsClosed: {},
    warningsSent: 0,
    refusalNotices: 0,
    keyAddressAlerts: 0,
    snapshotReloads: 0,
    rechecks: 0,
  };
  private snap!: LicensingSnapshot;
  private readonly failures: FailureLimiter;
  /** Binding order of live sessions: the newest go first when a licence has too many. */
  private readonly bindSeq = new WeakMap<ClientSession, number>();
  /** Sessions of the server's own web chat, with their grants. */
  private readonly firstParty = new WeakMap<ClientSession, FirstPartyGrant>();
  /** Refusals waiting for the account to be known (see SPARED_FOR_EXEMPT). */
  private readonly deferred = new WeakMap<ClientSession, Refusal>();
  private seq = 0;
  private noticeSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextAt: Instant | undefined;
  /**
   * The instant the live sessions were last evaluated at (at start: when nothing was live). The
   * timer aims at the first change after it, not after the clock's latest reading, so an
   * instant the clock passes between two readings (a timer firing a moment early) is still
   * evaluated rather than skipped.
   */
  private evaluatedAt: Instant = 0;
  private reloading: Promise<void> | undefined;
  private stopped = false;
  private unwatchPeers: (() => void) | undefined;
  /** Licences whose sessions on other nodes changed, checked against their limit at the next turn. */
  private readonly limitsToCheck = new Set<string>();
  private limitCheck: NodeJS.Immediate | undefined;

  constructor(private readonly deps: EnforcementDeps) {
    this.failures = new FailureLimiter({
      max: deps.maxProofFailuresPerAddress,
      windowMs: deps.proofFailureWindowMs,
      maxKeys: 100_000,
      now: () => deps.clock.now(),
    });
  }

  async start(): Promise<void> {
    this.snap = await this.deps.registry.snapshot();
    this.evaluatedAt = this.now();
    this.arm();
    this.unwatchPeers = this.deps.sessions.peers?.onLicenceChange((id) => this.peersChanged(id));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearImmediate(this.limitCheck);
    this.unwatchPeers?.();
  }

  snapshot(): LicensingSnapshot {
    return this.snap;
  }

  now(): Instant {
    return this.deps.clock.now();
  }

  /** The instant the timer waits for (the next stage, licence boundary or key revocation). */
  nextCheckAt(): Instant | undefined {
    return this.nextAt;
  }

  // ---- at login ----

  /** Has this address failed too many proofs lately? (Checked before any work is done.) */
  rateLimited(address: string): Refusal | undefined {
    if (!this.failures.blocked(address)) return undefined;
    this.counters.proofsRateLimited++;
    return { reason: "bad-proof", text: "too many failed licence proofs from this address; try again later" };
  }

  /** Counts a failed proof; forgery-like failures also count against the address. */
  proofFailed(address: string, refusal: Refusal): void {
    bump(this.counters.proofsRefused, refusal.reason);
    if (SUSPICIOUS.has(refusal.reason)) this.failures.record(address);
  }

  /**
   * Verifies a proof and applies the decisions for licensed apps: version rules (every
   * mode) and the licence's session limit. Shared by every carrier of a proof.
   */
  admitProof(session: ClientSession, input: ProofInput): Admission {
    const now = this.now();
    const snap = this.snap;
    const verdict = verifyProof(input, snap, now, this.deps.tickets);
    if (!verdict.ok) {
      if ("ticketRefused" in verdict) {
        this.counters.ticketsRefused++;
        return verdict;
      }
      if (verdict.app && verdict.key && this.mayBeExempt(verdict)) {
        return this.defer(session, input, verdict, verdict.key.keyId);
      }
      this.proofFailed(session.remoteAddress, verdict);
      return { ok: false, refusal: verdict };
    }
    const { app, key, licence } = verdict;
    const { version } = input.proof;
    const refusal =
      versionRefusal(snap.policy, app, version) ?? sessionLimitRefusal(app, licence, this.liveUsing(licence));
    if (refusal && this.mayBeExempt(refusal)) return this.defer(session, input, refusal, key.keyId);
    if (refusal) {
      bump(this.counters.proofsRefused, refusal.reason);
      return { ok: false, refusal };
    }
    this.counters.proofsAccepted++;
    if (verdict.resumed) this.counters.ticketProofsAccepted++;
    this.deps.keyAddresses?.record(app.clientId, key.keyId, session.remoteAddress);
    const info: ClientInfo = {
      clientId: app.clientId,
      version,
      platform: input.proof.platform.toLowerCase(),
      keyId: key.keyId,
      licenceId: licence.id,
      verified: true,
      source: "proof",
      ok: true,
    };
    const recommended = recommendedFor(snap.policy, app.clientId, version);
    return { ok: true, info, resumed: verdict.resumed, ...(recommended ? { recommended } : {}) };
  }

  /**
   * A connection of the server's own web chat, recognised by its browser grant: the policy
   * does not apply to it for the account the grant covers (checkBeforeAuth, onBound,
   * evaluateAll). It counts as the client WEB_CHAT_CLIENT_ID in statistics.
   */
  admitFirstParty(session: ClientSession, grant: FirstPartyGrant): void {
    this.firstParty.set(session, grant);
    setClientInfo(session, {
      clientId: WEB_CHAT_CLIENT_ID,
      version: grant.version,
      platform: "web",
      verified: true,
      source: "first-party",
      ok: true,
    });
  }

  /** A web chat session whose grant covers the (authenticated) account. */
  private firstPartyFor(session: ClientSession, username: string | undefined, verified = true): boolean {
    const grant = this.firstParty.get(session);
    return grant !== undefined && username !== undefined && grant.allows(username, verified);
  }

  /** Could an exempt account be spared this refusal (and are there exempt accounts)? */
  private mayBeExempt(refusal: Refusal): boolean {
    return SPARED_FOR_EXEMPT.has(refusal.reason) && this.snap.policy.exemptions.length > 0;
  }

  /** Admits a good proof provisionally; checkBeforeAuth refuses it unless the account is exempt. */
  private defer(session: ClientSession, input: ProofInput, refusal: Refusal, keyId: string): Admission {
    this.deferred.set(session, refusal);
    const { clientId, version, platform, ticket } = input.proof;
    const info: ClientInfo = {
      clientId,
      version,
      platform: platform.toLowerCase(),
      keyId,
      verified: true,
      source: "proof",
      ok: false,
    };
    return { ok: true, info, resumed: ticket !== undefined, deferred: refusal };
  }

  /**
   * A ticket for the client of an accepted signed proof, when tickets are enabled and the
   * stream is encrypted (the ticket's secret travels in the answer).
   */
  issueTicket(session: ClientSession, admission: Admission): IssuedTicket | undefined {
    const { tickets } = this.deps;
    if (!tickets || !admission.ok || admission.resumed || admission.deferred || !session.secure)
      return undefined;
    const { clientId, keyId } = admission.info;
    if (clientId === undefined || keyId === undefined) return undefined;
    this.counters.ticketsIssued++;
    return tickets.issue(clientId, keyId, this.now());
  }

  /**
   * At the start of SASL, before the password is used: a client without a verified licence
   * is refused when the claimed account is in enforce mode (`verified`: the account is the
   * authenticated one, not a claim). Returns false when refused.
   *
   * A client that proved a licence knows the protocol and gets the stream error; any other
   * client gets a SASL failure with the text first (`refuse`), which is what mainstream
   * clients show, then the same stream error.
   */
  checkBeforeAuth(
    session: ClientSession,
    username: string | undefined,
    refuse: (refusal: SaslRefusal) => void,
    verified = false,
  ): boolean {
    if (session.closed) return true;
    const deferred = this.deferred.get(session);
    if (deferred && !isExempt(this.snap.policy, username)) {
      bump(this.counters.proofsRefused, deferred.reason);
      session.close(refusalError(deferred));
      return false;
    }
    if (isLicensed(clientInfoOf(session))) return true;
    if (this.firstParty.has(session)) {
      if (this.firstPartyFor(session, username, verified)) return true;
      // The grant does not cover this account: the session is an unlicensed client like any other.
      this.firstParty.delete(session);
      setClientInfo(session, { ...UNLICENSED });
    }
    if (accountMode(this.snap.policy, this.now(), username) !== "enforce") return true;
    this.counters.unlicensedRefused++;
    const refusal = unlicensedRefusal(this.snap.policy);
    refuse({
      condition: REFUSAL_SASL_CONDITION,
      text: refusal.text,
      element: refusalCondition(refusal),
      streamError: refusalError(refusal),
    });
    return false;
  }

  /**
   * A session was bound: record what it is, and apply every decision with the account
   * known (the licence's session limit among them). Returns false when it was closed.
   */
  onBound(session: ClientSession): boolean {
    let info = clientInfoOf(session);
    if (!info) {
      info = unprovenClient(session);
      setClientInfo(session, info);
    }
    this.bindSeq.set(session, ++this.seq);
    if (session.closed) return false;
    const snap = this.snap;
    const now = this.now();
    let refusal: Refusal | undefined;
    let licenceId: string | undefined;
    if (isLicensed(info)) {
      const standing = licensedStanding(snap, info, now);
      if (standing.ok) {
        licenceId = info.licenceId = standing.licence.id;
        refusal = sessionLimitRefusal(
          standing.app,
          standing.licence,
          this.boundBefore(session, standing.licence),
        );
      } else refusal = standing;
    } else {
      refusal = sessionRefusal(snap, info, session.username, now);
    }
    if (
      refusal &&
      !isExempt(snap.policy, session.username) &&
      !this.firstPartyFor(session, session.username)
    ) {
      this.close(session, refusal);
      return false;
    }
    if (licenceId !== undefined) this.track(session, licenceId);
    // The other nodes of a cluster learn what the session runs (a no-op when its entry says it already).
    this.deps.sessions.updated(session);
    return true;
  }

  /** A bound session ended. */
  onEnded(session: ClientSession): void {
    this.untrack(session);
  }

  // ---- live sessions ----

  /** Live sessions by the licence they run under, so limits are counted without a scan. */
  private readonly byLicence = new Map<string, Set<ClientSession>>();
  private readonly licenceOf = new WeakMap<ClientSession, string>();

  private track(session: ClientSession, licenceId: string): void {
    const before = this.licenceOf.get(session);
    if (before === licenceId) return;
    this.untrack(session);
    const set = this.byLicence.get(licenceId) ?? new Set();
    set.add(session);
    this.byLicence.set(licenceId, set);
    this.licenceOf.set(session, licenceId);
    // Moved to another licence (a renewal): the other nodes count it under the new one.
    if (before !== undefined) this.deps.sessions.updated(session);
  }

  private untrack(session: ClientSession): void {
    const id = this.licenceOf.get(session);
    if (id === undefined) return;
    this.licenceOf.delete(session);
    const set = this.byLicence.get(id);
    set?.delete(session);
    if (set?.size === 0) this.byLicence.delete(id);
  }

  /** The sessions of other nodes of the cluster running under a licence (none on a single server). */
  private peersUsing(licenceId: string): ReadonlySet<PeerSession> {
    return this.deps.sessions.peers?.underLicence(licenceId) ?? NO_PEERS;
  }

  /**
   * Live sessions running under a licence, on this node and the cluster's others, as far as
   * its session limit needs to know: a popular licence has many sessions, and a login must not
   * walk them all. The tracked set holds sessions closed but not yet ended too, so only a set
   * at the limit is counted.
   */
  private liveUsing(licence: Licence): number {
    const set = this.byLicence.get(licence.id);
    const remote = this.peersUsing(licence.id).size;
    if (!set) return remote;
    if (licence.maxSessions === undefined || set.size + remote < licence.maxSessions)
      return set.size + remote;
    let n = remote;
    for (const s of set) if (!s.closed) n++;
    return n;
  }

  /**
   * The sessions under a licence bound before `session`, which has just been bound. On a single
   * server that is every live one (`session` is not tracked yet). In a cluster, binds are
   * ordered by their claim in the directory bucket: a login racing one on another node is
   * admitted when it claimed first, whichever node learns of the other first, so every node
   * keeps the same sessions (limitOrder).
   */
  private boundBefore(session: ClientSession, licence: Licence): number {
    const peers = this.deps.sessions.peers;
    const mine = peers?.bindOrderOf(session);
    const all = this.liveUsing(licence);
    if (peers === undefined || mine === undefined || licence.maxSessions === undefined) return all;
    if (all < licence.maxSessions) return all;
    let n = 0;
    for (const s of this.byLicence.get(licence.id) ?? []) {
      if (s !== session && !s.closed && (peers.bindOrderOf(s) ?? Infinity) < mine) n++;
    }
    for (const p of this.peersUsing(licence.id)) if (p.bindOrder < mine) n++;
    return n;
  }

  /**
   * A session of another node started or stopped running under a licence: a login that raced
   * one here may have put it over its limit. Checked once per turn, whatever the number of changes.
   */
  private peersChanged(licenceId: string): void {
    if (this.stopped || !this.byLicence.has(licenceId)) return;
    this.limitsToCheck.add(licenceId);
    this.limitCheck ??= setImmediate(() => {
      this.limitCheck = undefined;
      const ids = [...this.limitsToCheck];
      this.limitsToCheck.clear();
      for (const id of ids) this.checkLimit(id);
    });
  }

  /** Closes this node's sessions of a licence that are beyond its limit cluster-wide. */
  private checkLimit(licenceId: string): void {
    if (this.stopped) return;
    const sessions = [...(this.byLicence.get(licenceId) ?? [])].filter((s) => !s.closed);
    const info = sessions.map(clientInfoOf).find(isLicensed);
    if (!info) return;
    const standing = licensedStanding(this.snap, info, this.now());
    // A licence no longer in force is the next re-evaluation's (it closes them all).
    if (!standing.ok || standing.licence.id !== licenceId) return;
    this.closeBeyondLimit(standing.app, standing.licence, sessions);
  }

  /**
   * Closes, among this node's `sessions` under a licence, those beyond its limit: the sessions
   * of every node are ranked by when they were bound (the cluster-wide order of binds; on a
   * single server, this node's), and the newest beyond the limit go, never an exempt
   * account's. Every node ranks the same sessions the same way, so together they close exactly
   * the newest beyond the limit, each its own.
   */
  private closeBeyondLimit(app: ClientApp, licence: Licence, sessions: ClientSession[]): void {
    const max = licence.maxSessions;
    const remote = this.peersUsing(licence.id);
    if (max === undefined || sessions.length + remote.size <= max) return;
    const ranked = [
      ...sessions.map((s) => ({ order: this.limitOrder(s), session: s as ClientSession | undefined })),
      ...[...remote].map((p) => ({ order: p.bindOrder, session: undefined })),
    ];
    ranked.sort((a, b) => a.order - b.order || this.seqOf(a.session) - this.seqOf(b.session));
    for (const { session } of ranked.slice(max)) {
      if (!session || isExempt(this.snap.policy, session.username)) continue;
      this.close(session, sessionLimitRefusal(app, licence, max)!);
    }
  }

  /** Where a session of this node ranks among a licence's sessions (lower: bound earlier). */
  private limitOrder(session: ClientSession): number {
    const peers = this.deps.sessions.peers;
    if (!peers) return this.seqOf(session);
    return peers.bindOrderOf(session) ?? Infinity;
  }

  private seqOf(session: ClientSession | undefined): number {
    return session === undefined ? 0 : (this.bindSeq.get(session) ?? 0);
  }

  private close(session: ClientSession, refusal: Refusal): void {
    bump(this.counters.sessionsClosed, refusal.reason);
    this.deps.log.info(
      { session: session.id, account: session.username, reason: refusal.reason },
      "closing a session refused by the licensing policy",
    );
    this.untrack(session);
    // A client that proved no licence may not read the stream error: it gets a notice first.
    const info = clientInfoOf(session);
    if (session.jid && !isLicensed(info)) {
      const id = `licence-refused-${this.now().toString(36)}-${++this.noticeSeq}`;
      session.send(refusalNotice(session.jid.domain, session.jid.toString(), refusal, id));
      this.counters.refusalNotices++;
    }
    session.close(refusalError(refusal));
  }

  /**
   * Applies the decisions in force to every live session: closes the refused ones (never
   * an exempt account's) and, per licence with a session limit, the newest beyond it; then
   * tells the listeners (onEvaluated).
   */
  evaluateAll(): void {
    this.evaluateSessions();
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.deps.log.error({ err }, "a licensing re-evaluation listener failed");
      }
    }
  }

  /**
   * Registers a function called after every re-evaluation (a registry change, a scheduled
   * instant, a recheck), so other links (components, federation) follow the same decisions
   * at the same moments; returns its removal.
   */
  onEvaluated(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private readonly listeners = new Set<() => void>();

  private evaluateSessions(): void {
    this.counters.rechecks++;
    const now = this.now();
    this.evaluatedAt = now;
    const snap = this.snap;
    const groups = new Map<string, { licence: Licence; app: ClientApp; sessions: ClientSession[] }>();
    for (const s of [...this.deps.sessions.all()]) {
      if (s.closed) continue;
      const exempt = isExempt(snap.policy, s.username);
      const info = clientInfoOf(s) ?? UNLICENSED;
      if (isLicensed(info)) {
        const standing = licensedStanding(snap, info, now);
        if (!standing.ok) {
          if (!exempt) this.close(s, standing);
          continue;
        }
        // The app may have moved to another licence (e.g. a renewal granted before the old one ended).
        info.licenceId = standing.licence.id;
        this.track(s, standing.licence.id);
        let group = groups.get(standing.licence.id);
        if (!group) {
          group = { licence: standing.licence, app: standing.app, sessions: [] };
          groups.set(standing.licence.id, group);
        }
        group.sessions.push(s);
      } else if (!exempt && !this.firstPartyFor(s, s.username)) {
        const refusal = sessionRefusal(snap, info, s.username, now);
        if (refusal) this.close(s, refusal);
      }
    }
    for (const { licence, app, sessions } of groups.values()) this.closeBeyondLimit(app, licence, sessions);
  }

  /**
   * Loads a new snapshot when the stored revision changed. A failure of `onRegistryChange`
   * is logged and retried at the next round; it does not hold back the new snapshot.
   */
  private reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        const rev = await this.deps.registry.revision();
        if (rev !== this.snap.revision) {
          this.snap = await this.deps.registry.snapshot();
          this.counters.snapshotReloads++;
          this.changeHookDue = true;
          this.deps.log.info({ revision: this.snap.revision }, "licensing registry change loaded");
        }
        if (this.changeHookDue && this.deps.onRegistryChange) {
          try {
            await this.deps.onRegistryChange();
            this.changeHookDue = false;
          } catch (err) {
            this.deps.log.error(
              { err },
              "applying a licensing registry change failed; retrying at the next poll",
            );
          }
        }
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }
  /** `onRegistryChange` has not yet run (successfully) for the current snapshot. */
  private changeHookDue = false;

  /**
   * One polling round: re-evaluates when the registry changed or a scheduled instant has
   * come — also when the reload failed after taking a new snapshot, whose instants must be
   * armed (otherwise no later round would see a change and its cutoff would never come).
   */
  async poll(): Promise<void> {
    if (this.stopped) return;
    const before = this.snap;
    try {
      await this.reload();
    } finally {
      if (!this.stopped && (this.snap !== before || (this.nextAt !== undefined && this.now() >= this.nextAt)))
        this.evaluateAndArm();
    }
  }

  /** Re-evaluates every live session, then arms the timer, also when the evaluation threw. */
  private evaluateAndArm(): void {
    try {
      this.evaluateAll();
    } finally {
      this.arm();
    }
  }

  /** Reloads the registry if it changed and re-evaluates every live session now. */
  async recheck(): Promise<void> {
    try {
      await this.reload();
    } finally {
      this.evaluateAndArm();
    }
  }

  /** Sets the timer for the next instant at which a decision can change by itself. */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.now();
    const before = this.nextAt;
    this.nextAt = nextChangeAt(this.snap, this.evaluatedAt);
    if (this.nextAt !== before)
      this.deps.log.info(
        { at: this.nextAt === undefined ? undefined : new Date(this.nextAt).toISOString() },
        "next scheduled licensing change",
      );
    if (this.nextAt === undefined) return;
    const wait = Math.min(Math.max(this.nextAt - now, 0), MAX_TIMER_MS);
    this.timer = setTimeout(() => {
      if (this.nextAt !== undefined && this.now() >= this.nextAt) this.evaluateAndArm();
      else this.arm();
    }, wait);
    this.timer.unref();
  }
}
