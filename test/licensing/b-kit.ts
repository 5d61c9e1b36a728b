/**
 * Test kit for the licensing module: a server with the module loaded (in-process
 * harness, or a server of our own on a given data directory and clock), a registered
 * app with keys and a licence, proofs signed the way a licensed client signs them,
 * and fake sessions walked through the login steps (stream feature, proof, SASL start,
 * authentication, binding).
 */

import { createPrivateKey, sign } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { Clock } from "../../src/core/clock.js";
import type { SaslRefusal } from "../../src/core/events.js";
import type { StreamFeatureProvider } from "../../src/core/features.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import { deriveCredentials } from "../../src/core/sasl/credentials.js";
import type { ClientSession } from "../../src/core/session.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import type { AccessPolicy, ClientApp, Licence } from "../../src/licensing/index.js";
import {
  generateKeyPair,
  LicensingRegistry,
  NS_LICENCE,
  proofSignedBytes,
} from "../../src/licensing/index.js";
import licensing, { type LicensingApi, licensingApi } from "../../src/modules/licensing/index.js";
import { loadServerConfig } from "../../src/server/config.js";
import { SwitchboardServer } from "../../src/server/server.js";
import { freePorts } from "../helpers/server.js";
import { FakeSession, type Harness, ManualClock, startHarness } from "../kit/harness.js";

export const ACTOR = "test:b";
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** Options for the tests: no XEP-0092 query unless a test asks for it (it adds a stanza to read). */
export function moduleConfig(options: Record<string, unknown> = {}): Record<string, unknown> {
  return { modules: { licensing: { queryClientVersion: false, ...options } } };
}

export interface LicensingHarness extends Harness {
  registry: LicensingRegistry;
  api: LicensingApi;
  feature: StreamFeatureProvider;
}

/** `listen`: also accept client connections on a free loopback port (`server.addresses.c2sPort`). */
export async function startLicensing(
  options: Record<string, unknown> = {},
  opts: { listen?: boolean; config?: Record<string, unknown> } = {},
): Promise<LicensingHarness> {
  const ports = opts.listen ? { c2sPort: (await freePorts(1))[0] } : {};
  const h = await startHarness({
    modules: [licensing] as ModuleDefinition<unknown>[],
    config: { ...moduleConfig(options), ...ports, ...opts.config },
  });
  return withLicensing(h);
}

export function withLicensing<T extends Harness>(h: T): T & LicensingHarness {
  const services = h.server.services;
  const api = licensingApi(services.apis);
  if (!api) throw new Error("the licensing module did not provide its API");
  const feature = services.streamFeatures
    .forStage("pre-auth")
    .find((p) => p.namespaces?.includes(NS_LICENCE));
  if (!feature) throw new Error("no licence stream feature");
  return Object.assign(h, { registry: new LicensingRegistry(services.storage, h.clock), api, feature });
}

/** A server of our own (not the harness) when a test needs a given data directory or the wall clock. */
export interface OwnServer {
  server: SwitchboardServer;
  registry: LicensingRegistry;
  api: LicensingApi;
  dataDir: string;
  domain: string;
  c2sPort: number;
  stop(): Promise<void>;
}

export async function startOwnServer(opts: {
  dataDir: string;
  clock: Clock;
  options?: Record<string, unknown>;
}): Promise<OwnServer> {
  const config = loadServerConfig({
    overrides: {
      domain: "example.test",
      dataDir: opts.dataDir,
      c2sPort: (await freePorts(1))[0],
      c2sTlsPort: 0,
      componentPort: 0,
      s2sPort: 0,
      allowPlaintext: true,
      logLevel: "silent",
      scramIterations: 4096,
      ...moduleConfig(opts.options),
    },
  });
  const server = await SwitchboardServer.start(config, {
    clock: opts.clock,
    modules: [licensing] as ModuleDefinition<unknown>[],
    logger: pino({ level: "silent" }),
  });
  const services = server.services;
  return {
    server,
    registry: new LicensingRegistry(services.storage, opts.clock),
    api: licensingApi(services.apis)!,
    dataDir: opts.dataDir,
    domain: config.domain,
    c2sPort: server.addresses.c2sPort!,
    stop: () => server.stop(),
  };
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-licensing-b-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function createAccount(
  server: SwitchboardServer,
  name: string,
  password = "secret",
): Promise<void> {
  const creds = deriveCredentials(password, { iterations: 4096, hashes: ["SHA-1", "SHA-256"] });
  await server.services.storage.accounts.create(name, creds);
}

// ---- the registry ----

export interface TestApp {
  app: ClientApp;
  licence: Licence;
  keyId: string;
  privateKeyPem: string;
  /** More keys by id (e.g. for rotation tests). */
  keys: Map<string, string>;
}

let appSeq = 0;

export async function registerApp(
  registry: LicensingRegistry,
  opts: { clientId?: string; name?: string; maxSessions?: number; validUntil?: number } = {},
): Promise<TestApp> {
  const publisher = await registry.addPublisher(ACTOR, {
    organisation: `Publisher ${++appSeq}`,
    contactEmail: `dev${appSeq}@example.com`,
  });
  const app = await registry.registerApp(ACTOR, {
    clientId: opts.clientId ?? `com.example.chat${appSeq}`,
    name: opts.name ?? "Example Chat",
    publisherId: publisher.id,
    platforms: ["linux", "android"],
  });
  const pair = generateKeyPair();
  await registry.addKey(ACTOR, app.clientId, { keyId: "k1", publicKey: pair.publicKey });
  const licence = await registry.grantLicence(ACTOR, {
    clientId: app.clientId,
    scope: "client",
    ...(opts.maxSessions !== undefined ? { maxSessions: opts.maxSessions } : {}),
    ...(opts.validUntil !== undefined ? { validUntil: opts.validUntil } : {}),
  });
  return {
    app,
    licence,
    keyId: "k1",
    privateKeyPem: pair.privateKeyPem,
    keys: new Map([["k1", pair.privateKeyPem]]),
  };
}

export async function addKey(registry: LicensingRegistry, t: TestApp, keyId: string): Promise<string> {
  const pair = generateKeyPair();
  await registry.addKey(ACTOR, t.app.clientId, { keyId, publicKey: pair.publicKey });
  t.keys.set(keyId, pair.privateKeyPem);
  return pair.privateKeyPem;
}

export function setPolicy(registry: LicensingRegistry, change: Partial<AccessPolicy>): Promise<AccessPolicy> {
  return registry.setPolicy(ACTOR, (p) => ({ ...p, ...change }));
}

// ---- proofs ----

export interface FeatureOffer {
  mode: string | undefined;
  cutoff: string | undefined;
  nonce: string;
  bindingType: string | undefined;
}

export function readFeature(el: XmlElement): FeatureOffer {
  if (el.name !== "licence" || el.attrs.xmlns !== NS_LICENCE) throw new Error(`not a licence feature: ${el}`);
  return {
    mode: el.attrs.mode,
    cutoff: el.attrs.cutoff,
    nonce: el.getChildText("nonce") ?? "",
    bindingType: el.getChild("channel-binding")?.attrs.type,
  };
}

export interface ProofParams {
  domain: string;
  streamId: string;
  nonce: string;
  bindingType: string | undefined;
  bindingData: Buffer | undefined;
  clientId: string;
  version: string;
  platform: string;
  keyId: string;
  privateKeyPem: string;
}

/** A <proof/> element signed the way the protocol says a licensed client signs it. */
export function proofElement(p: ProofParams): XmlElement {
  const bytes = proofSignedBytes(p, p);
  const signature = sign(null, bytes, createPrivateKey(p.privateKeyPem)).toString("base64");
  return x(
    "proof",
    {
      xmlns: NS_LICENCE,
      "client-id": p.clientId,
      version: p.version,
      platform: p.platform,
      "key-id": p.keyId,
    },
    signature,
  );
}

// ---- fake sessions through the login steps ----

export function newSession(h: Harness, bindings?: Record<string, Buffer>): FakeSession {
  const s = new FakeSession(h);
  s.authenticated = false;
  for (const [type, data] of Object.entries(bindings ?? {})) s.bindings.set(type, data);
  return s;
}

export async function offer(h: LicensingHarness, s: ClientSession): Promise<FeatureOffer> {
  const el = await h.feature.offer(s);
  if (!el || Array.isArray(el)) throw new Error("expected one licence feature element");
  return readFeature(el);
}

export interface ProveOptions {
  version?: string;
  platform?: string;
  keyId?: string;
  privateKeyPem?: string;
  clientId?: string;
}

/** Signs a proof for the session's offered nonce (what a licensed client does). */
export function proofFor(
  h: LicensingHarness,
  s: ClientSession,
  t: TestApp,
  o: FeatureOffer,
  opts: ProveOptions = {},
) {
  const keyId = opts.keyId ?? t.keyId;
  return proofElement({
    domain: h.domain,
    streamId: s.streamId,
    nonce: o.nonce,
    bindingType: o.bindingType,
    bindingData: o.bindingType === undefined ? undefined : s.channelBinding(o.bindingType),
    clientId: opts.clientId ?? t.app.clientId,
    version: opts.version ?? "5.0.1",
    platform: opts.platform ?? "linux",
    keyId,
    privateKeyPem: opts.privateKeyPem ?? t.keys.get(keyId) ?? t.privateKeyPem,
  });
}

/** Feature, proof, answer: returns the session (check `closed` / `closeError` / `received`). */
export async function prove(h: LicensingHarness, s: FakeSession, t: TestApp, opts: ProveOptions = {}) {
  const o = await offer(h, s);
  await h.feature.handle!(s, proofFor(h, s, t, o, opts));
  return s;
}

const saslRefusals = new WeakMap<ClientSession, SaslRefusal>();

/**
 * The `refuse` of the SASL hooks for a fake session, doing what the stream engine does: the
 * first refusal counts (kept for saslRefusalOf), and one with a stream error closes the session.
 */
export function refuser(s: FakeSession): (r: SaslRefusal) => void {
  return (r) => {
    if (saslRefusals.has(s)) return;
    saslRefusals.set(s, r);
    if (r.streamError) s.close(r.streamError);
  };
}

/** The SASL failure a hook refused the session's login with, if any. */
export function saslRefusalOf(s: FakeSession): SaslRefusal | undefined {
  return saslRefusals.get(s);
}

/** SASL start with the claimed account, then authentication; false when refused or closed. */
export async function authenticate(h: Harness, s: FakeSession, username: string): Promise<boolean> {
  const hooks = h.server.services.hooks;
  const refuse = refuser(s);
  await hooks.fireAsync("c2s/pre-sasl", {
    session: s,
    mechanism: "PLAIN",
    claimedUsername: username,
    refuse,
  });
  if (s.closed || saslRefusals.has(s)) return false;
  s.username = username;
  s.authenticated = true;
  await hooks.fireAsync("c2s/authenticated", { session: s, username, refuse });
  return !s.closed && !saslRefusals.has(s);
}

export async function bind(h: Harness, s: FakeSession, resource?: string): Promise<boolean> {
  h.server.services.sessions.bind(s, resource);
  s.bound = true;
  await h.server.services.hooks.fireAsync("session/bound", { session: s });
  return !s.closed;
}

/** The whole login; `t` given: with a proof. Returns the session, closed when refused. */
export async function login(
  h: LicensingHarness,
  username: string,
  t?: TestApp,
  opts: ProveOptions & { resource?: string; bindings?: Record<string, Buffer> } = {},
): Promise<FakeSession> {
  if (!(await h.server.services.storage.accounts.exists(username))) await h.createUser(username);
  const s = newSession(h, opts.bindings);
  if (t) {
    await prove(h, s, t, opts);
    if (s.closed) return s;
  } else {
    await offer(h, s);
  }
  if (!(await authenticate(h, s, username))) return s;
  await bind(h, s, opts.resource);
  return s;
}

/** The latest licence <success/> the session received, if any. */
export function licenceSuccess(s: FakeSession): XmlElement | undefined {
  return s.received.findLast((el) => el.name === "success" && el.attrs.xmlns === NS_LICENCE);
}

/** The licence condition of a session's closing stream error. */
export function refusalOf(s: FakeSession): {
  condition: string;
  reason: string;
  attrs: Record<string, string | undefined>;
  text: string;
} {
  const err = s.closeError;
  if (!err) throw new Error(`session ${s.id} was not closed with a stream error (closed: ${s.closed})`);
  const app = err.appCondition;
  if (!app || app.attrs.xmlns !== NS_LICENCE)
    throw new Error(`no licence condition in ${err.condition}: ${err.text}`);
  return { condition: err.condition, reason: app.name, attrs: app.attrs, text: err.text ?? "" };
}

/** Waits until `pred` holds, checking every 20 ms, up to `ms`; returns the time it took. */
export async function waitUntil(pred: () => boolean, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

export { FakeSession, ManualClock };
