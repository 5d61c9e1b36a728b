/**
 * A licence's session limit counted across the nodes of a cluster, on the enforcement alone:
 * the other nodes' sessions are played by a stand-in for SessionDirectory.peers (what the
 * cluster directory offers), so the order in which a node learns of binds is the test's to
 * choose. A login over the limit set by another node's sessions is refused; two logins racing
 * on two nodes leave the earlier bind, whichever node hears of the other first; a lowered limit
 * keeps the earliest bound sessions of the whole cluster.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pino } from "pino";
import type { StreamError } from "../../src/core/errors.js";
import type { PeerSession, PeerSessions, SessionClient } from "../../src/core/peer-sessions.js";
import type { ClientSession } from "../../src/core/session.js";
import type { SessionDirectory } from "../../src/core/session-directory.js";
import {
  type AppLicence,
  type ClientInfo,
  emptySnapshot,
  type LicensingSnapshot,
} from "../../src/licensing/index.js";
import { Enforcement } from "../../src/modules/licensing/enforcement.js";
import { setClientInfo } from "../../src/modules/licensing/session-info.js";
import { ManualClock } from "../kit/harness.js";

const CLIENT_ID = "com.example.chat";
const LICENCE = "lic-1";

let seq = 0;
class Session implements Partial<ClientSession> {
  readonly id = `s${++seq}`;
  readonly data = new Map<string | symbol, unknown>();
  readonly directedPresence = new Set<string>();
  closed = false;
  closedWith: string | undefined;
  constructor(readonly username: string) {}
  send(): void {}
  close(error?: StreamError): void {
    this.closed = true;
    this.closedWith = error?.condition;
  }
}

/** The other nodes' sessions, and this node's binds in the cluster-wide order, as the test sets them. */
class Peers implements PeerSessions {
  readonly node = "b";
  readonly remote = new Set<PeerSession>();
  readonly orders = new Map<ClientSession, number>();
  private listener: ((licenceId: string) => void) | undefined;
  describeClients(): void {}
  bindOrderOf(session: ClientSession): number | undefined {
    return this.orders.get(session);
  }
  underLicence(licenceId: string): ReadonlySet<PeerSession> {
    return new Set([...this.remote].filter((p) => p.client?.licenceId === licenceId));
  }
  ofAccount(username: string): PeerSession[] {
    return [...this.remote].filter((p) => p.username === username);
  }
  all(): Iterable<PeerSession> {
    return this.remote;
  }
  onLicenceChange(listener: (licenceId: string) => void): () => void {
    this.listener = listener;
    return () => {
      this.listener = undefined;
    };
  }
  /** Another node announced a bind. */
  remoteBind(username: string, bindOrder: number): PeerSession {
    const client: SessionClient = { clientId: CLIENT_ID, version: "1.0", licenceId: LICENCE, verified: true };
    const p: PeerSession = { username, node: "a", bindOrder, client };
    this.remote.add(p);
    this.listener?.(LICENCE);
    return p;
  }
}

function snapshotWith(maxSessions: number, revision = 1): LicensingSnapshot {
  const s = emptySnapshot();
  s.revision = revision;
  s.apps.set(CLIENT_ID, {
    clientId: CLIENT_ID,
    name: "Chat",
    publisherId: "p",
    platforms: ["linux"],
    createdAt: 0,
  });
  s.keys.set(CLIENT_ID, new Map([["k1", { keyId: "k1", clientId: CLIENT_ID, publicKey: "", createdAt: 0 }]]));
  const licence: AppLicence = {
    id: LICENCE,
    scope: "client",
    clientId: CLIENT_ID,
    status: "active",
    validFrom: 0,
    maxSessions,
    createdAt: 0,
  };
  s.licences.set(CLIENT_ID, [licence]);
  return s;
}

function node(maxSessions: number) {
  const peers = new Peers();
  const local = new Set<ClientSession>();
  let snap = snapshotWith(maxSessions);
  const sessions = {
    peers,
    all: () => local.values(),
    updated: () => undefined,
  } as unknown as SessionDirectory;
  const enforcement = new Enforcement({
    domain: "example.org",
    clock: new ManualClock(),
    sessions,
    log: pino({ level: "silent" }),
    registry: { revision: async () => snap.revision, snapshot: async () => snap },
    maxProofFailuresPerAddress: 10,
    proofFailureWindowMs: 60_000,
  });
  /** A session that proved the licence, bound here at `order` in the cluster's order of binds. */
  const bind = (username: string, order: number) => {
    const s = new Session(username) as unknown as ClientSession & Session;
    const info: ClientInfo = {
      clientId: CLIENT_ID,
      version: "1.0",
      platform: "linux",
      keyId: "k1",
      licenceId: LICENCE,
      verified: true,
      source: "proof",
      ok: true,
    };
    setClientInfo(s, info);
    peers.orders.set(s, order);
    local.add(s);
    return { session: s, admitted: enforcement.onBound(s) };
  };
  const lowerLimit = async (max: number) => {
    snap = snapshotWith(max, snap.revision + 1);
    await enforcement.recheck();
  };
  return { peers, enforcement, bind, lowerLimit };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe("a licence's session limit across the nodes of a cluster", () => {
  test("a login over the limit set by another node's session is refused", async () => {
    const b = node(1);
    await b.enforcement.start();
    b.peers.remoteBind("alice", 10);
    const { session, admitted } = b.bind("bob", 11);
    assert.equal(admitted, false);
    assert.equal(session.closedWith, "policy-violation");
    assert.deepEqual(b.enforcement.counters.sessionsClosed, { "too-many-sessions": 1 });
    b.enforcement.stop();
  });

  test("two logins racing: the later bind is closed once its node hears of the earlier one", async () => {
    const b = node(1);
    await b.enforcement.start();
    // Bound here at 12 before the bind at 11 on the other node was heard of: admitted for now.
    const { session, admitted } = b.bind("bob", 12);
    assert.equal(admitted, true);
    b.peers.remoteBind("alice", 11);
    await nextTurn();
    assert.equal(session.closedWith, "policy-violation", "the later bind goes");
    assert.deepEqual(b.enforcement.counters.sessionsClosed, { "too-many-sessions": 1 });
    b.enforcement.stop();
  });

  test("two logins racing: the earlier bind stays, also when its node heard of the later one first", async () => {
    const b = node(1);
    await b.enforcement.start();
    // The other node's bind (at 12) arrived before this node's login (bound at 11) was checked.
    b.peers.remoteBind("alice", 12);
    const { session, admitted } = b.bind("bob", 11);
    assert.equal(admitted, true, "bound first, so the other node closes its own");
    await nextTurn();
    assert.equal(session.closed, false);
    b.enforcement.stop();
  });

  test("a lowered limit keeps the earliest bound sessions of the whole cluster", async () => {
    const b = node(4);
    await b.enforcement.start();
    b.peers.remoteBind("alice", 1);
    const second = b.bind("bob", 2).session;
    b.peers.remoteBind("carol", 3);
    const fourth = b.bind("dave", 4).session;
    await nextTurn();
    assert.equal(second.closed || fourth.closed, false, "four sessions are within a limit of four");
    await b.lowerLimit(2);
    assert.equal(second.closed, false, "second bound in the cluster: kept");
    assert.equal(fourth.closedWith, "policy-violation", "fourth: beyond the new limit");
    b.enforcement.stop();
  });
});
