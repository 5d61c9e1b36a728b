/**
 * Licensing set-up for end-to-end tests, done the way an operator and a
 * publisher would: with the `switchboard` CLI against the server's data
 * directory (keygen, publisher add, app register, licence grant, policy set),
 * every call logged to the server's log file.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CLI, REPO_ROOT, type TestServer } from "./server.js";

export const LICENCE_NS = "urn:switchboard:client-licence:0";

/**
 * How long a change made with the CLI may take to reach the server: it polls the
 * registry revision every 250 ms (the tests' pollIntervalMs), then reloads.
 */
export const SETTLE_MS = 600;

/** Waits until a change just made with the CLI is in force in the server. */
export function settle(): Promise<void> {
  return sleep(SETTLE_MS);
}

/**
 * Runs `switchboard <args> --data-dir … --domain … --json` and parses the JSON it prints
 * (`keygen` works on files only and takes no data directory).
 */
export function cli(server: TestServer, args: string[]): Promise<Record<string, unknown>> {
  const where = args[0] === "keygen" ? [] : ["--data-dir", server.dataDir, "--domain", server.domain];
  const full = [...args, ...where, "--json"];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...full], { cwd: REPO_ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      try {
        writeFileSync(server.logFile, `\n[cli] switchboard ${full.join(" ")}\n${stdout}${stderr}`, {
          flag: "a",
        });
      } catch {
        // the log is a convenience
      }
      if (err)
        return reject(new Error(`switchboard ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
      try {
        resolve(JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        reject(new Error(`switchboard ${args.join(" ")}: output is not JSON:\n${stdout}`));
      }
    });
  });
}

/** The same, for a command that must fail: resolves with its error output. */
export function cliFails(server: TestServer, args: string[]): Promise<string> {
  return cli(server, args).then(
    (out) => {
      throw new Error(`switchboard ${args.join(" ")} succeeded, expected a failure: ${JSON.stringify(out)}`);
    },
    (err: Error) => err.message,
  );
}

/** What a publisher's build of an app needs to prove its licence. */
export interface AppCredentials {
  clientId: string;
  keyId: string;
  privateKeyPem: string;
  /** The private key file written by `switchboard keygen`. */
  keyFile: string;
  licenceId: string;
}

let publisherId: string | undefined;
let publisherServer: TestServer | undefined;

/**
 * A registered app with one key and an active client licence:
 * keygen → publisher add (once per server) → app register --public-key-file → licence grant.
 */
export async function registerApp(
  server: TestServer,
  clientId: string,
  opts: { keyId?: string; platforms?: string[]; licence?: string[] } = {},
): Promise<AppCredentials> {
  const keyId = opts.keyId ?? "k1";
  const keyFile = path.join(server.dataDir, `${clientId}.${keyId}.key`);
  await cli(server, ["keygen", "--out", keyFile]);
  if (publisherServer !== server) {
    const out = (await cli(server, [
      "publisher",
      "add",
      "--organisation",
      "Example Software Ltd",
      "--email",
      "dev@example.com",
    ])) as { publisher: { id: string } };
    publisherId = out.publisher.id;
    publisherServer = server;
  }
  await cli(server, [
    "app",
    "register",
    clientId,
    "--name",
    `App ${clientId}`,
    "--publisher",
    publisherId!,
    "--platform",
    (opts.platforms ?? ["linux"]).join(","),
    "--key-id",
    keyId,
    "--public-key-file",
    `${keyFile}.pub`,
  ]);
  const granted = (await cli(server, ["licence", "grant", clientId, ...(opts.licence ?? [])])) as {
    licence: { id: string };
  };
  await settle();
  return {
    clientId,
    keyId,
    keyFile,
    privateKeyPem: readFileSync(keyFile, "utf8"),
    licenceId: granted.licence.id,
  };
}

/** Adds a key to an app (keygen + app key add); returns the app's credentials with that key. */
export async function addKey(
  server: TestServer,
  app: AppCredentials,
  keyId: string,
): Promise<AppCredentials> {
  const keyFile = path.join(server.dataDir, `${app.clientId}.${keyId}.key`);
  await cli(server, ["keygen", "--out", keyFile]);
  await cli(server, [
    "app",
    "key",
    "add",
    app.clientId,
    "--key-id",
    keyId,
    "--public-key-file",
    `${keyFile}.pub`,
  ]);
  return { ...app, keyId, keyFile, privateKeyPem: readFileSync(keyFile, "utf8") };
}

/** `switchboard policy set …`, then waits until the server applies it; returns what the command reported. */
export async function policySet(server: TestServer, ...args: string[]): Promise<Record<string, unknown>> {
  const out = await cli(server, ["policy", "set", ...args]);
  await settle();
  return out;
}

/** An ISO-8601 UTC instant `ms` from now, whole seconds (what an operator would type). */
export function instantIn(ms: number): { iso: string; at: number } {
  const at = Math.ceil((Date.now() + ms) / 1000) * 1000;
  return { iso: new Date(at).toISOString().replace(/\.000Z$/, "Z"), at };
}

/** Resolves at an absolute instant (ms since the epoch). */
export function sleepUntil(at: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
