/**
 * Admin commands of the licensing programme: keygen, publishers, apps and their keys,
 * licences, the access policy (policy-commands.ts) and the audit log. Each is a
 * command definition, so the CLI, the HTTP API and the console share them.
 */
import { chmod, readFile, writeFile } from "node:fs/promises";
import { z } from "zod";
import { auditValueText } from "../../core/audit.js";
import { CommandError, defineCommand } from "../../core/commands.js";
import type { AppKey, Licence } from "../../licensing/index.js";
import {
  allLicences,
  CLIENT_ID_SYNTAX,
  checkClientId,
  checkDomain,
  generateKeyPair,
  KeyError,
  LICENCE_SCOPES,
  type LicenceScope,
  type LicenceState,
  type LicensingRegistry,
  licenceStatusAt,
  licenceSubject,
  publicKeyFromInput,
} from "../../licensing/index.js";
import { actorOf, flagInput, iso, listInput, parseInstant, registryOf, table } from "./command-input.js";
import {
  appRulesSchema,
  appSchema,
  auditOutput,
  keySchema,
  licenceOutput,
  licenceViewSchema,
  publisherSchema,
} from "./output-schemas.js";
import { policyCommands } from "./policy-commands.js";

export const keygen = defineCommand({
  name: ["keygen"],
  description: "Generate an Ed25519 key pair for a client app (FILE: private key, FILE.pub: public key)",
  args: [
    { name: "out", description: "file for the private key; the public key goes to FILE.pub" },
    { name: "force", description: "overwrite existing files", flag: true },
  ],
  input: z.object({ out: z.string().min(1), force: flagInput }),
  output: z.object({ privateKeyFile: z.string(), publicKeyFile: z.string(), publicKey: z.string() }),
  mutates: false,
  local: true,
  async run(_ctx, input) {
    const pair = generateKeyPair();
    const publicFile = `${input.out}.pub`;
    const flag = input.force ? "w" : "wx";
    try {
      await writeFile(input.out, pair.privateKeyPem, { mode: 0o600, flag });
      await writeFile(publicFile, `${pair.publicKey}\n`, { mode: 0o644, flag });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === "EEXIST") throw new CommandError(`${e.path} exists (use --force to overwrite it)`, 409);
      throw new CommandError(`cannot write the key files: ${e.message}`);
    }
    // writeFile applies the mode only when it creates the file.
    await chmod(input.out, 0o600);
    return {
      message: [
        `private key: ${input.out} (keep it secret; it signs the proofs of your client)`,
        `public key:  ${publicFile}: ${pair.publicKey}`,
        `give the public key to the network operator: switchboard app key add <client-id> --key-id <id> --public-key ${pair.publicKey}`,
      ].join("\n"),
      data: { privateKeyFile: input.out, publicKeyFile: publicFile, publicKey: pair.publicKey },
    };
  },
});

export const publisherAdd = defineCommand({
  name: ["publisher", "add"],
  description: "Add a publisher of client apps",
  args: [
    { name: "organisation", description: "name of the organisation" },
    { name: "email", description: "contact email address" },
  ],
  input: z.object({ organisation: z.string().min(1), email: z.string().min(1) }),
  output: z.object({ publisher: publisherSchema }),
  mutates: true,
  async run(ctx, input) {
    const publisher = await registryOf(ctx).addPublisher(actorOf(ctx), {
      organisation: input.organisation,
      contactEmail: input.email,
    });
    return { message: `added publisher ${publisher.id} (${publisher.organisation})`, data: { publisher } };
  },
});

export const publisherList = defineCommand({
  name: ["publisher", "list"],
  description: "List publishers",
  args: [],
  input: z.object({}),
  output: z.object({ publishers: z.array(publisherSchema) }),
  mutates: false,
  async run(ctx) {
    const s = await registryOf(ctx).snapshot();
    const publishers = [...s.publishers.values()].sort((a, b) => a.createdAt - b.createdAt);
    const message =
      publishers.map((p) => `${p.id}  ${p.organisation} <${p.contactEmail}>`).join("\n") || "(no publishers)";
    return { message, data: { publishers } };
  },
});

/** The public key from --public-key or --public-key-file, checked before anything is written. */
async function keyInput(input: { publicKey?: string; publicKeyFile?: string }): Promise<string | undefined> {
  if (input.publicKey !== undefined && input.publicKeyFile !== undefined) {
    throw new CommandError("give --public-key or --public-key-file, not both");
  }
  let text = input.publicKey;
  if (input.publicKeyFile !== undefined) {
    try {
      text = await readFile(input.publicKeyFile, "utf8");
    } catch (err) {
      throw new CommandError(`cannot read ${input.publicKeyFile}: ${(err as Error).message}`);
    }
  }
  if (text === undefined) return undefined;
  try {
    return publicKeyFromInput(text);
  } catch (err) {
    if (err instanceof KeyError) throw new CommandError(`invalid public key: ${err.message}`);
    throw err;
  }
}

const keyArgs = [
  { name: "keyId", description: "id of the key within the app, e.g. k1 or android-2026" },
  { name: "publicKey", description: "Ed25519 public key: base64 of the 32 raw bytes" },
  { name: "publicKeyFile", description: "file holding the public key (FILE.pub from keygen, or PEM)" },
];

export const appRegister = defineCommand({
  name: ["app", "register"],
  description: "Register a client app, optionally with its first public key",
  args: [
    { name: "clientId", description: "stable client id, e.g. com.example.chat", positional: true },
    { name: "name", description: "display name" },
    { name: "publisher", description: "publisher id (see publisher list), or its contact email" },
    {
      name: "platform",
      description: "platform (repeatable or comma-separated): linux, android, …",
      repeatable: true,
    },
    ...keyArgs,
  ],
  input: z.object({
    clientId: z.string(),
    name: z.string().min(1),
    publisher: z.string().min(1),
    platform: listInput,
    keyId: z.string().optional(),
    publicKey: z.string().optional(),
    publicKeyFile: z.string().optional(),
  }),
  output: z.object({ app: appSchema, keys: z.array(keySchema) }),
  mutates: true,
  async run(ctx, input) {
    checkClientId(input.clientId);
    const publicKey = await keyInput(input);
    if (publicKey === undefined && input.keyId !== undefined) {
      throw new CommandError("--key-id needs --public-key or --public-key-file");
    }
    const registry = registryOf(ctx);
    if (publicKey !== undefined) await refuseKnownKey(registry, publicKey);
    const app = await registry.registerApp(actorOf(ctx), {
      clientId: input.clientId,
      name: input.name,
      publisherId: await publisherIdOf(registry, input.publisher),
      platforms: input.platform,
    });
    let key: AppKey | undefined;
    if (publicKey !== undefined) {
      key = await registry.addKey(actorOf(ctx), app.clientId, { keyId: input.keyId ?? "k1", publicKey });
    }
    return {
      message: `registered ${app.clientId} (${app.name})${key ? ` with key ${key.keyId}` : ""}`,
      data: { app, keys: key ? [key] : [] },
    };
  },
});

/** A publisher named by its id, or by its contact email when exactly one publisher has it. */
async function publisherIdOf(registry: LicensingRegistry, given: string): Promise<string> {
  const { publishers } = await registry.snapshot();
  if (publishers.has(given) || !given.includes("@")) return given;
  const email = given.toLowerCase();
  const matching = [...publishers.values()].filter((p) => p.contactEmail.toLowerCase() === email);
  if (matching.length > 1) {
    throw new CommandError(
      `${matching.length} publishers have the email ${given} (${matching.map((p) => p.id).join(", ")}): give the id`,
      409,
    );
  }
  if (matching.length === 0) throw new CommandError(`no publisher ${given}`, 404);
  return matching[0]!.id;
}

/** So that a key already in use cannot leave a half-registered app behind. */
async function refuseKnownKey(registry: LicensingRegistry, publicKey: string): Promise<void> {
  for (const keys of (await registry.snapshot()).keys.values()) {
    for (const k of keys.values()) {
      if (k.publicKey === publicKey) {
        throw new CommandError(`this public key is already registered (${k.clientId} key ${k.keyId})`, 409);
      }
    }
  }
}

export const appList = defineCommand({
  name: ["app", "list"],
  description: "List client apps",
  args: [{ name: "publisher", description: "only this publisher's apps" }],
  input: z.object({ publisher: z.string().optional() }),
  output: z.object({ apps: z.array(appSchema) }),
  mutates: false,
  async run(ctx, input) {
    const s = await registryOf(ctx).snapshot();
    if (input.publisher !== undefined && !s.publishers.has(input.publisher)) {
      throw new CommandError(`no publisher ${input.publisher}`, 404);
    }
    const apps = [...s.apps.values()]
      .filter((a) => input.publisher === undefined || a.publisherId === input.publisher)
      .sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
    const message =
      apps
        .map((a) => {
          const active = [...(s.keys.get(a.clientId)?.values() ?? [])].filter(
            (k) => k.revokedAt === undefined,
          );
          return `${a.clientId}  ${a.name}  [${a.platforms.join(", ")}]  ${active.length} active key(s)`;
        })
        .join("\n") || "(no apps)";
    return { message, data: { apps } };
  },
});

const keyState = (k: AppKey) => (k.revokedAt === undefined ? "active" : `revoked ${iso(k.revokedAt)}`);

export const appShow = defineCommand({
  name: ["app", "show"],
  description: "Show an app: publisher, keys, licences and version rules",
  args: [{ name: "clientId", description: "client id", positional: true }],
  input: z.object({ clientId: z.string() }),
  output: z.object({
    app: appSchema,
    publisher: publisherSchema.optional(),
    keys: z.array(keySchema),
    licences: z.array(licenceViewSchema),
    rules: appRulesSchema,
  }),
  mutates: false,
  async run(ctx, input) {
    checkClientId(input.clientId);
    const s = await registryOf(ctx).snapshot();
    const app = s.apps.get(input.clientId);
    if (!app) throw new CommandError(`no app ${input.clientId}`, 404);
    const now = ctx.clock.now();
    const publisher = s.publishers.get(app.publisherId);
    const keys = [...(s.keys.get(app.clientId)?.values() ?? [])].sort((a, b) => a.createdAt - b.createdAt);
    const licences = (s.licences.get(app.clientId) ?? []).map((l) => withState(l, now));
    const rules = s.policy.apps[app.clientId];
    const message = [
      table([
        ["client id", app.clientId],
        ["name", app.name],
        ["publisher", publisher ? `${publisher.id} (${publisher.organisation})` : app.publisherId],
        ["platforms", app.platforms.join(", ")],
        ["registered", iso(app.createdAt)],
        ["minimum version", rules?.minVersion ?? "none"],
        ["recommended", rules?.recommendedVersion ?? "none"],
        ["blocked", rules?.blocked?.map((r) => `${r.from}-${r.to}`).join(", ") || "none"],
        ["upgrade URL", rules?.upgradeUrl ?? s.policy.upgradeUrl ?? "none"],
      ]),
      "keys:",
      ...(keys.length ? keys.map((k) => `  ${k.keyId}  ${keyState(k)}  ${k.publicKey}`) : ["  (none)"]),
      "licences:",
      ...(licences.length ? licences.map((l) => `  ${licenceLine(l)}`) : ["  (none)"]),
    ].join("\n");
    return { message, data: { app, publisher, keys, licences, rules: rules ?? {} } };
  },
});

export const appKeyAdd = defineCommand({
  name: ["app", "key", "add"],
  description: "Add a public key to an app (apps may have several active keys, for rotation)",
  args: [{ name: "clientId", description: "client id", positional: true }, ...keyArgs],
  input: z.object({
    clientId: z.string(),
    keyId: z.string().min(1),
    publicKey: z.string().optional(),
    publicKeyFile: z.string().optional(),
  }),
  output: z.object({ key: keySchema }),
  mutates: true,
  async run(ctx, input) {
    const publicKey = await keyInput(input);
    if (publicKey === undefined) throw new CommandError("give --public-key or --public-key-file");
    const key = await registryOf(ctx).addKey(actorOf(ctx), input.clientId, { keyId: input.keyId, publicKey });
    return { message: `added key ${key.keyId} to ${key.clientId}`, data: { key } };
  },
});

export const appKeyRevoke = defineCommand({
  name: ["app", "key", "revoke"],
  description: "Revoke an app's key (kept as history; sessions proven with it are closed)",
  args: [
    { name: "clientId", description: "client id", positional: true },
    { name: "keyId", description: "key id", positional: true },
  ],
  input: z.object({ clientId: z.string(), keyId: z.string() }),
  output: z.object({ key: keySchema }),
  mutates: true,
  async run(ctx, input) {
    const key = await registryOf(ctx).revokeKey(actorOf(ctx), input.clientId, input.keyId);
    return { message: `revoked key ${key.keyId} of ${key.clientId}`, data: { key } };
  },
});

type LicenceView = Licence & { state: LicenceState; subject: string };

const withState = (l: Licence, now: number): LicenceView => ({
  ...l,
  subject: licenceSubject(l),
  state: licenceStatusAt(l, now),
});

function licenceLine(l: LicenceView): string {
  const until = l.validUntil === undefined ? "no end" : `until ${iso(l.validUntil)}`;
  const limit = l.maxSessions === undefined ? "" : `, at most ${l.maxSessions} sessions`;
  const terms = l.termsRef === undefined ? "" : `, terms ${l.termsRef}`;
  return `${l.id}  ${l.subject}  ${l.scope}  ${l.state}  from ${iso(l.validFrom)} ${until}${limit}${terms}`;
}

const scopeInput = z.enum(LICENCE_SCOPES as [LicenceScope, ...LicenceScope[]]);

export const licenceGrant = defineCommand({
  name: ["licence", "grant"],
  description:
    "Grant a licence: to an app (scope client), a remote server's domain (peering) or a component's domain (gateway)",
  args: [
    {
      name: "subject",
      description: "the app's client id (scope client), or the domain (scopes peering and gateway)",
      positional: true,
    },
    { name: "scope", description: "client (default), peering or gateway" },
    { name: "publisher", description: "peering or gateway: the publisher it is granted to (optional)" },
    { name: "validFrom", description: "start, ISO-8601 with time zone (default: now)" },
    { name: "validUntil", description: "end, ISO-8601 with time zone (default: none)" },
    { name: "maxSessions", description: "client licences: most concurrent sessions (default: unlimited)" },
    { name: "terms", description: "reference to the agreed terms (text or URL)" },
  ],
  input: z
    .object({
      subject: z.string().optional(),
      /** The API's earlier name of the subject of a client licence, still accepted. */
      clientId: z.string().optional(),
      domain: z.string().optional(),
      scope: scopeInput.optional(),
      publisher: z.string().min(1).optional(),
      validFrom: z.string().optional(),
      validUntil: z.string().optional(),
      maxSessions: z.coerce.number().int().min(1).optional(),
      terms: z.string().optional(),
    })
    .refine((i) => [i.subject, i.clientId, i.domain].filter((v) => v !== undefined).length === 1, {
      message: "name the licence's subject once: the client id or the domain",
      path: ["subject"],
    }),
  output: licenceOutput,
  mutates: true,
  async run(ctx, input) {
    const scope = input.scope ?? (input.domain !== undefined ? undefined : "client");
    if (scope === undefined) throw new CommandError("a domain licence needs --scope peering or gateway");
    const subject = (input.subject ?? input.clientId ?? input.domain)!;
    if (scope !== "client" && checkDomain(subject) === ctx.config.domain)
      throw new CommandError(`${subject} is the domain this server serves`, 409);
    const licence = await registryOf(ctx).grantLicence(actorOf(ctx), {
      scope,
      ...(scope === "client" ? { clientId: subject } : { domain: subject }),
      ...(input.publisher !== undefined ? { publisherId: input.publisher } : {}),
      validFrom: input.validFrom === undefined ? undefined : parseInstant("valid-from", input.validFrom),
      validUntil: input.validUntil === undefined ? undefined : parseInstant("valid-until", input.validUntil),
      maxSessions: input.maxSessions,
      termsRef: input.terms,
    });
    return {
      message: `granted ${licenceLine(withState(licence, ctx.clock.now()))}`,
      data: { licence: withState(licence, ctx.clock.now()) },
    };
  },
});

function statusCommand(
  word: "suspend" | "revoke" | "reinstate",
  status: Licence["status"],
  description: string,
) {
  const past = { suspend: "suspended", revoke: "revoked", reinstate: "reinstated" }[word];
  return defineCommand({
    name: ["licence", word],
    description,
    args: [{ name: "licenceId", description: "licence id (see licence list)", positional: true }],
    input: z.object({ licenceId: z.string().min(1) }),
    output: licenceOutput,
    mutates: true,
    async run(ctx, input) {
      const licence = await registryOf(ctx).setLicenceStatus(actorOf(ctx), input.licenceId, status);
      const view = withState(licence, ctx.clock.now());
      return { message: `${past} ${licenceLine(view)}`, data: { licence: view } };
    },
  });
}

export const licenceSuspend = statusCommand(
  "suspend",
  "suspended",
  "Suspend a licence (its sessions are closed; reinstate undoes it)",
);
export const licenceRevoke = statusCommand(
  "revoke",
  "revoked",
  "Revoke a licence for good (kept as history; its sessions are closed)",
);
export const licenceReinstate = statusCommand("reinstate", "active", "Reinstate a suspended licence");

export const licenceExtend = defineCommand({
  name: ["licence", "extend"],
  description: "Set the end of a licence's validity (live sessions are closed when it passes)",
  args: [
    { name: "licenceId", description: "licence id", positional: true },
    {
      name: "validUntil",
      description: "new end, ISO-8601 with time zone, or never (as licence grant --valid-until)",
    },
    { name: "until", description: "the former name of --valid-until", deprecatedFor: "validUntil" },
  ],
  input: z
    .object({
      licenceId: z.string().min(1),
      validUntil: z.string().min(1).optional(),
      until: z.string().min(1).optional(),
    })
    .refine((i) => (i.validUntil === undefined) !== (i.until === undefined), {
      message: "give the new end with --valid-until (once)",
      path: ["validUntil"],
    }),
  output: licenceOutput,
  mutates: true,
  async run(ctx, input) {
    const given = (input.validUntil ?? input.until)!;
    const until = given === "never" ? undefined : parseInstant("valid-until", given);
    const licence = await registryOf(ctx).extendLicence(actorOf(ctx), input.licenceId, until);
    const view = withState(licence, ctx.clock.now());
    return { message: `extended ${licenceLine(view)}`, data: { licence: view } };
  },
});

const LICENCE_STATES = ["active", "suspended", "revoked", "expired", "pending"] as const;

export const licenceList = defineCommand({
  name: ["licence", "list"],
  description: "List licences (apps', peers' and gateways') with their status now",
  args: [
    { name: "app", description: "only this app's licences" },
    { name: "subject", description: "only the licences of this client id or domain" },
    { name: "scope", description: "only this scope: client, peering or gateway" },
    { name: "status", description: "only this status: active, suspended, revoked, expired, pending" },
  ],
  input: z.object({
    app: z.string().optional(),
    subject: z.string().min(1).optional(),
    scope: scopeInput.optional(),
    status: z.enum(LICENCE_STATES).optional(),
  }),
  output: z.object({ licences: z.array(licenceViewSchema) }),
  mutates: false,
  async run(ctx, input) {
    const s = await registryOf(ctx).snapshot();
    if (input.app !== undefined) {
      checkClientId(input.app);
      if (!s.apps.has(input.app)) throw new CommandError(`no app ${input.app}`, 404);
    }
    // A client id is lower case already; a domain is compared in its normalised form.
    const subject =
      input.subject === undefined
        ? undefined
        : CLIENT_ID_SYNTAX.test(input.subject)
          ? input.subject
          : checkDomain(input.subject);
    const now = ctx.clock.now();
    const licences = allLicences(s)
      .filter((l) => input.app === undefined || (l.scope === "client" && l.clientId === input.app))
      .filter((l) => subject === undefined || licenceSubject(l) === subject)
      .filter((l) => input.scope === undefined || l.scope === input.scope)
      .map((l) => withState(l, now))
      .filter((l) => input.status === undefined || l.state === input.status);
    return { message: licences.map(licenceLine).join("\n") || "(no licences)", data: { licences } };
  },
});

export const auditList = defineCommand({
  name: ["audit", "list"],
  description: "Show the audit log, latest last",
  args: [
    {
      name: "kind",
      description: "only this kind (e.g. licence.revoke) or prefix ending in . (e.g. licence.)",
    },
    { name: "subject", description: "only changes to this subject (e.g. policy, licence:lic_…)" },
    { name: "since", description: "only changes at or after this ISO-8601 instant" },
    { name: "limit", description: "the latest this many (default 50)" },
  ],
  input: z.object({
    kind: z.string().optional(),
    subject: z.string().optional(),
    since: z.string().optional(),
    limit: z.coerce.number().int().min(1).max(100_000).default(50),
  }),
  output: auditOutput,
  mutates: false,
  async run(ctx, input) {
    const entries = (
      await registryOf(ctx).audit({
        ...(input.kind === undefined
          ? {}
          : input.kind.endsWith(".")
            ? { kindPrefix: input.kind }
            : { kind: input.kind }),
        ...(input.subject === undefined ? {} : { subject: input.subject }),
        ...(input.since === undefined ? {} : { since: parseInstant("since", input.since) }),
        limit: input.limit,
        newestFirst: true,
      })
    ).reverse();
    const message =
      entries
        .map((e) => `${iso(e.at)}  ${e.kind}  ${e.data.subject}  by ${e.data.actor}${describeChange(e.data)}`)
        .join("\n") || "(no entries)";
    return { message, data: { entries } };
  },
});

/** The fields that changed, "field: before → after", for one line of the log. */
function describeChange(record: { before?: unknown; after?: unknown }): string {
  const before = (record.before ?? {}) as Record<string, unknown>;
  const after = (record.after ?? {}) as Record<string, unknown>;
  if (record.before === undefined) return "";
  const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
    (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return changed.length
    ? `  (${changed.map((k) => `${k}: ${auditValueText(k, before[k])} → ${auditValueText(k, after[k])}`).join("; ")})`
    : "";
}

export const licenceTicketsRotate = defineCommand({
  name: ["licence", "tickets", "rotate"],
  description:
    "Replace the licence ticket key: every ticket issued so far is refused, clients sign their next proof",
  args: [],
  input: z.object({}),
  output: z.object({ rotatedAt: z.number().int() }),
  mutates: true,
  async run(ctx) {
    const { rotatedAt } = await registryOf(ctx).rotateTicketKey(actorOf(ctx));
    return {
      message: `replaced the licence ticket key at ${iso(rotatedAt)}: earlier tickets are refused`,
      data: { rotatedAt },
    };
  },
});

export const licensingCommands = [
  keygen,
  publisherAdd,
  publisherList,
  appRegister,
  appList,
  appShow,
  appKeyAdd,
  appKeyRevoke,
  licenceGrant,
  licenceSuspend,
  licenceRevoke,
  licenceReinstate,
  licenceExtend,
  licenceList,
  licenceTicketsRotate,
  ...policyCommands,
  auditList,
];
