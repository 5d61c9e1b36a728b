/**
 * The cluster session directory on its own, with the NATS side replaced by a recorder: binds
 * claim and announce, later binds win everywhere (conflict), remote sessions join delivery
 * lookups, stale copies never override newer state, limits count every node's resources, and
 * two resources coming online on two nodes at once still exchange presence.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ClusterLink,
  ClusterSessionDirectory,
  type RemoteSession,
} from "../../src/cluster/directory.js";
import type { DirectoryDelta, SessionEntry } from "../../src/cluster/entry.js";
import { StanzaError, StreamError } from "../../src/core/errors.js";
import type { Jid } from "../../src/core/jid.js";
import type { ClientSession } from "../../src/core/session.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";

class RecordingLink implements ClusterLink {
  readonly node = "here";
  readonly inc = "inc-here";
  revision = 100;
  failClaims = false;
  readonly announced: DirectoryDelta[] = [];
  readonly released: { key: string; revision: number }[] = [];
  readonly written: { key: string; entry: SessionEntry; revision: number }[] = [];
  readonly delivered: { to: string; stanza: XmlElement }[] = [];
  readonly closed: { to: string; condition?: string }[] = [];
  async claim(): Promise<number> {
    if (this.failClaims) throw new Error("NATS is down");
    return ++this.revision;
  }
  async write(key: string, entry: SessionEntry, revision: number): Promise<number> {
    this.written.push({ key, entry, revision });
    return ++this.revision;
  }
  async release(key: string, revision: number): Promise<void> {
    this.released.push({ key, revision });
  }
  announce(delta: DirectoryDelta): void {
    this.announced.push(delta);
  }
  deliver(target: RemoteSession, stanza: XmlElement): void {
    this.delivered.push({ to: target.jid.toString(), stanza });
  }
  close(target: RemoteSession, error?: StreamError): void {
    this.closed.push({ to: target.jid.toString(), ...(error ? { condition: error.condition } : {}) });
  }
  onError(): void {}
}

let seq = 0;
class TestSession implements ClientSession {
  readonly id = `local${++seq}`;
  readonly transport = "tcp";
  readonly remoteAddress = "127.0.0.1";
  readonly connectedAt = Date.now();
  readonly secure = true;
  readonly streamId = this.id;
  readonly directedPresence = new Set<string>();
  readonly data = new Map<string | symbol, unknown>();
  readonly authenticated = true;
  readonly attached = true;
  resource?: string;
  jid?: Jid;
  bound = false;
  presence?: XmlElement;
  priority = 0;
  rosterRequested = false;
  closed = false;
  closedWith?: string;
  readonly received: XmlElement[] = [];
  constructor(readonly username: string) {}
  channelBinding(): Buffer | undefined {
    return undefined;
  }
  channelBindingTypes(): string[] {
    return [];
  }
  send(stanza: XmlElement): void {
    this.received.push(stanza);
  }
  whenWritable(): Promise<void> {
    return Promise.resolve();
  }
  close(error?: StreamError): void {
    this.closed = true;
    this.closedWith = error?.condition;
  }
}

function setup(maxResources = 10) {
  const link = new RecordingLink();
  const dir = new ClusterSessionDirectory("example.org", maxResources);
  dir.connect(link);
  return { link, dir };
}

async function bindLocal(dir: ClusterSessionDirectory, user: string, resource: string): Promise<TestSession> {
  const s = new TestSession(user);
  await dir.bind(s, resource);
  s.bound = true;
  return s;
}

function available(dir: ClusterSessionDirectory, s: TestSession, priority = 0): void {
  s.presence = x("presence", { from: s.jid!.toString() });
  s.priority = priority;
  dir.updated(s);
}

function remoteEntry(jid: string, over: Partial<SessionEntry> = {}): SessionEntry {
  return {
    jid,
    node: "there",
    inc: "inc-there",
    session: `remote-${jid}`,
    bind: 1,
    seq: 0,
    priority: 0,
    interested: false,
    transport: "tcp",
    address: "192.0.2.1",
    secure: true,
    connectedAt: 0,
    ...over,
  };
}

const settled = () => new Promise((r) => setImmediate(r));

describe("cluster session directory", () => {
  test("a bind claims the JID, announces it with the claim's revision; an unbind announces and releases it", async () => {
    const { link, dir } = setup();
    const s = await bindLocal(dir, "alice", "phone");
    assert.equal(s.jid?.toString(), "alice@example.org/phone");
    assert.deepEqual(
      link.announced.map((d) => d.op),
      ["bind"],
    );
    const bound = link.announced[0] as { entry: SessionEntry };
    assert.equal(bound.entry.bind, 101);
    assert.equal(bound.entry.node, "here");
    available(dir, s, 5);
    const update = link.announced[1] as { op: string; entry: SessionEntry };
    assert.equal(update.op, "update");
    assert.equal(update.entry.priority, 5);
    assert.ok(update.entry.presence?.includes("presence"));
    await settled();
    assert.equal(link.written[0]?.revision, 101, "the update is written at the claim's revision");
    dir.unbind(s);
    await dir.flush();
    assert.equal(link.announced.at(-1)?.op, "unbind");
    assert.deepEqual(link.released, [{ key: link.written[0]!.key, revision: 102 }]);
    assert.equal(dir.count, 0);
  });

  test("a later bind of the same full JID on another node closes the local session with conflict", async () => {
    const { dir } = setup();
    const s = await bindLocal(dir, "alice", "phone");
    dir.apply(remoteEntry("alice@example.org/phone", { bind: 50 }));
    assert.equal(s.closed, false, "an older bind elsewhere does not win");
    assert.equal(dir.get("alice", "phone"), s);
    dir.apply(remoteEntry("alice@example.org/phone", { bind: 500 }));
    assert.equal(s.closedWith, "conflict");
    dir.unbind(s);
    const now = dir.get("alice", "phone") as RemoteSession;
    assert.equal(now.node, "there");
  });

  test("remote sessions take part in lookups; count and all() stay this node's", async () => {
    const { link, dir } = setup();
    const local = await bindLocal(dir, "bob", "desk");
    available(dir, local, 1);
    dir.apply(
      remoteEntry("bob@example.org/tablet", {
        presence: "<presence/>",
        priority: 3,
        interested: true,
        knew: [local.id],
      }),
    );
    dir.apply(
      remoteEntry("bob@example.org/watch", {
        presence: "<presence/>",
        priority: 3,
        bind: 2,
        knew: [local.id],
      }),
    );
    dir.apply(remoteEntry("carol@example.org/web", { bind: 3 }));
    assert.deepEqual(
      dir
        .resourcesOf("bob")
        .map((s) => s.resource)
        .sort(),
      ["desk", "tablet", "watch"],
    );
    assert.deepEqual(
      dir
        .messageTargets("bob")
        .map((s) => s.resource)
        .sort(),
      ["tablet", "watch"],
    );
    assert.deepEqual(
      dir.interestedOf("bob").map((s) => s.resource),
      ["tablet"],
    );
    assert.equal(dir.availableOf("carol").length, 0, "bound but not available");
    assert.ok(dir.isOnline("carol"));
    assert.equal(dir.count, 1);
    assert.deepEqual([...dir.all()], [local]);
    assert.equal(dir.remoteSessions, 3);

    const target = dir.get("bob", "tablet")!;
    target.send(x("message", { to: "bob@example.org/tablet" }));
    target.close(new StreamError("policy-violation", "account disabled"));
    assert.deepEqual(
      link.delivered.map((d) => d.to),
      ["bob@example.org/tablet"],
    );
    assert.deepEqual(link.closed, [{ to: "bob@example.org/tablet", condition: "policy-violation" }]);
  });

  test("late copies never override newer state, and an unbind is not undone by an older copy", () => {
    const { dir } = setup();
    dir.apply(remoteEntry("dave@example.org/a", { bind: 7, seq: 2, priority: 9, presence: "<presence/>" }));
    dir.apply(remoteEntry("dave@example.org/a", { bind: 7, seq: 1, priority: 1 }));
    assert.equal(dir.get("dave", "a")?.priority, 9);
    dir.applyUnbind("dave@example.org/a", 7);
    assert.equal(dir.get("dave", "a"), undefined);
    dir.apply(remoteEntry("dave@example.org/a", { bind: 7, seq: 3 }));
    assert.equal(dir.get("dave", "a"), undefined, "the tombstone keeps it out");
    dir.apply(remoteEntry("dave@example.org/a", { bind: 8 }));
    assert.ok(dir.get("dave", "a"), "a newer bind comes in");
  });

  test("the resource limit counts the account's resources on every node", async () => {
    const { dir } = setup(2);
    dir.apply(remoteEntry("erin@example.org/one"));
    await bindLocal(dir, "erin", "two");
    await assert.rejects(
      bindLocal(dir, "erin", "three"),
      (err) => err instanceof StanzaError && err.condition === "resource-constraint",
    );
    // Taking over a resource already bound (on another node) does not need another place.
    await bindLocal(dir, "erin", "one");
  });

  test("a bind while the directory cannot be reached is refused, to be tried again", async () => {
    const { link, dir } = setup();
    link.failClaims = true;
    await assert.rejects(
      bindLocal(dir, "frank", "x"),
      (err) => err instanceof StanzaError && err.condition === "resource-constraint",
    );
    assert.equal(dir.count, 0);
  });

  test("two resources coming online on two nodes at once exchange presence; known ones do not twice", async () => {
    const { link, dir } = setup();
    const mine = await bindLocal(dir, "gina", "here");
    available(dir, mine);
    // Its node did not know of gina/here when gina/there became available.
    dir.apply(
      remoteEntry("gina@example.org/there", { presence: "<presence><show>away</show></presence>", knew: [] }),
    );
    assert.equal(mine.received.length, 1);
    assert.equal(mine.received[0]?.attrs.from, "gina@example.org/there");
    assert.equal(mine.received[0]?.getChildText("show"), "away");
    assert.deepEqual(
      link.delivered.map((d) => [d.to, d.stanza.attrs.from]),
      [["gina@example.org/there", "gina@example.org/here"]],
    );
    // A resource whose node knew of gina/here exchanged presence there already.
    dir.apply(remoteEntry("gina@example.org/other", { presence: "<presence/>", knew: [mine.id], bind: 2 }));
    assert.equal(mine.received.length, 1);
    assert.equal(link.delivered.length, 1);
  });

  test("a node's sessions go together; a restarted node keeps those of its new run", () => {
    const { dir } = setup();
    dir.apply(remoteEntry("hank@example.org/old", { inc: "run1" }));
    dir.apply(remoteEntry("hank@example.org/new", { inc: "run2", bind: 2 }));
    dir.apply(remoteEntry("hank@example.org/else", { node: "elsewhere", bind: 3 }));
    assert.deepEqual(
      dir.dropNode("there", "run2").map((s) => s.resource),
      ["old"],
    );
    assert.deepEqual(
      dir
        .resourcesOf("hank")
        .map((s) => s.resource)
        .sort(),
      ["else", "new"],
    );
    const gone = dir.dropNode("there");
    assert.equal(gone[0]?.closed, true);
    assert.deepEqual([...dir.remoteNodes()], ["elsewhere"]);
  });
});

describe("what modules count of the other nodes' sessions (peers)", () => {
  const client = (licenceId: string) => ({
    clientId: "com.example.chat",
    version: "1.0",
    licenceId,
    verified: true,
  });

  test("entries carry the client the module describes; a change of it is announced", async () => {
    const { link, dir } = setup();
    const described = new Map<ClientSession, ReturnType<typeof client>>();
    dir.peers.describeClients((s) => described.get(s));
    const s = new TestSession("alice");
    described.set(s, client("L1"));
    await dir.bind(s, "phone");
    const bound = link.announced[0] as { entry: SessionEntry };
    assert.deepEqual(bound.entry.client, client("L1"), "the bind's entry already says what it runs");
    dir.updated(s);
    assert.equal(link.announced.length, 1, "nothing changed, nothing announced");
    described.set(s, client("L2"));
    dir.updated(s);
    const update = link.announced[1] as { op: string; entry: SessionEntry };
    assert.equal(update.op, "update");
    assert.equal(update.entry.client?.licenceId, "L2");
    assert.equal(dir.peers.bindOrderOf(s), 101, "its place in the cluster-wide order of binds");
  });

  test("other nodes' sessions by licence: counted without a scan, changes told, gone when they end", () => {
    const { dir } = setup();
    const told: string[] = [];
    dir.peers.onLicenceChange((id) => told.push(id));
    dir.apply(remoteEntry("bob@example.org/a", { bind: 5, client: client("L1") }));
    dir.apply(remoteEntry("carol@example.org/b", { bind: 6, client: client("L1") }));
    dir.apply(remoteEntry("dave@example.org/c", { bind: 7 }));
    assert.equal(dir.peers.underLicence("L1").size, 2);
    assert.deepEqual(
      [...dir.peers.underLicence("L1")].map((p) => [p.username, p.node, p.bindOrder]),
      [
        ["bob", "there", 5],
        ["carol", "there", 6],
      ],
    );
    assert.deepEqual(told, ["L1", "L1"]);
    // A renewal moved carol's session to another licence.
    dir.apply(remoteEntry("carol@example.org/b", { bind: 6, seq: 1, client: client("L2") }));
    assert.equal(dir.peers.underLicence("L1").size, 1);
    assert.equal(dir.peers.underLicence("L2").size, 1);
    assert.deepEqual(told, ["L1", "L1", "L1", "L2"]);
    dir.applyUnbind("bob@example.org/a", 5);
    assert.equal(dir.peers.underLicence("L1").size, 0);
    assert.deepEqual(
      dir.peers.ofAccount("carol").map((p) => p.client?.licenceId),
      ["L2"],
    );
    assert.equal([...dir.peers.all()].length, 2);
    dir.dropNode("there");
    assert.equal(dir.peers.underLicence("L2").size, 0);
    assert.deepEqual(told.slice(4), ["L1", "L2"]);
  });
});
