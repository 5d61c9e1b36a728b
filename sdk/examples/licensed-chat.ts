/**
 * A small licensed command-line chat client built on the SDK.
 *
 *   node dist/sdk/examples/licensed-chat.js --jid alice@example.net --password-file pw.txt \
 *     --key example-chat.key --client-id com.example.chat --key-id k1 --version 5.0.1
 *
 * Lines typed are sent as chat messages to the current recipient:
 *   /to bob@example.net      choose the recipient
 *   /presence [away|dnd|xa|chat] [status text]
 *   /quit                    disconnect
 * Incoming messages print as "< from: text", presence as "* from is available",
 * server notices (headlines) as "! notice: …". When the network refuses this
 * build the client prints the reason, the minimum version and the upgrade link,
 * and exits with status 3. It exits with 0 after /quit (or the end of its input),
 * and with 1, after "! cannot connect: <why>", when it cannot log in. Against a
 * server with a self-signed certificate (the default of `switchboard start`), add
 * --insecure (never on a real network).
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { type Element, xml } from "@xmpp/client";
import { type LicensedClient, licensedClient } from "../licensed-client.js";
import { type LicenceRefusedError, licenceRefusal } from "../refusal.js";

/** Exit statuses: 0 after /quit or the end of input, 1 when the client cannot connect, 2 on bad usage. */
const EXIT_FAILED = 1;
const EXIT_REFUSED = 3;

const USAGE = `usage: licensed-chat --jid USER@DOMAIN (--password-file FILE | env CHAT_PASSWORD)
         --key PRIVATE_KEY.pem --client-id ID --key-id ID --version X.Y.Z
         [--platform NAME] [--service xmpp://HOST:PORT] [--resource NAME] [--to JID]
         [--timeout SECONDS] [--insecure]

  --insecure   accept the server's certificate unchecked: for a test server whose
               certificate is self-signed (switchboard start makes one), never on a real network
  --timeout    how long to wait for each answer of the server (default 10)

Exit status: 0 after /quit or the end of input, 1 when it cannot connect, 2 on bad
usage, 3 when the network refuses this build.`;

function platformName(): string {
  const names: Record<string, string> = { darwin: "macos", win32: "windows" };
  return names[process.platform] ?? process.platform;
}

function options() {
  const { values } = parseArgs({
    options: {
      jid: { type: "string" },
      "password-file": { type: "string" },
      key: { type: "string" },
      "client-id": { type: "string" },
      "key-id": { type: "string" },
      version: { type: "string" },
      platform: { type: "string" },
      service: { type: "string" },
      resource: { type: "string" },
      to: { type: "string" },
      insecure: { type: "boolean", default: false },
      timeout: { type: "string", default: "10" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    process.exit(0);
  }
  const missing = ["jid", "key", "client-id", "key-id", "version"].filter(
    (k) => values[k as keyof typeof values] === undefined,
  );
  const password = values["password-file"]
    ? readFileSync(values["password-file"], "utf8").trimEnd()
    : process.env.CHAT_PASSWORD;
  if (password === undefined) missing.push("password-file");
  if (missing.length) {
    process.stderr.write(`missing: ${missing.map((m) => `--${m}`).join(", ")}\n${USAGE}\n`);
    process.exit(2);
  }
  if (!/^\d+(\.\d+)?$/.test(values.timeout) || Number(values.timeout) <= 0) {
    process.stderr.write(`--timeout: ${values.timeout} is not a number of seconds\n`);
    process.exit(2);
  }
  const jid = values.jid!;
  const at = jid.indexOf("@");
  if (at <= 0) {
    process.stderr.write(`--jid: ${jid} is not user@domain\n`);
    process.exit(2);
  }
  return { ...values, password: password!, username: jid.slice(0, at), domain: jid.slice(at + 1) };
}

function say(line: string): void {
  process.stdout.write(line + "\n");
}

function refusalNotice(r: LicenceRefusedError): string {
  const parts = [`! refused: ${r.condition}${r.text ? ` (${r.text})` : ""}`];
  if (r.minimum) parts.push(`minimum version ${r.minimum}`);
  if (r.details.from && r.details.to) parts.push(`blocked versions ${r.details.from}-${r.details.to}`);
  if (r.upgradeUrl) parts.push(`upgrade: ${r.upgradeUrl}`);
  if (r.limit !== undefined) parts.push(`session limit ${r.limit}`);
  return parts.join("; ");
}

function showStanza(el: Element): void {
  const from = el.attrs.from ?? "(server)";
  if (el.name === "message") {
    const body = el.getChildText("body");
    if (el.attrs.type === "headline") {
      const subject = el.getChildText("subject");
      say(`! notice from ${from}: ${subject ? `${subject}: ` : ""}${body ?? ""}`);
    } else if (el.attrs.type === "error") {
      say(`! message to ${from} failed`);
    } else if (body !== null) {
      say(`< ${from}: ${body}`);
    }
  } else if (el.name === "presence") {
    const type = el.attrs.type;
    if (type === "unavailable") say(`* ${from} is offline`);
    else if (type === undefined) {
      const show = el.getChildText("show");
      const status = el.getChildText("status");
      say(`* ${from} is ${show ?? "available"}${status ? ` (${status})` : ""}`);
    } else if (type === "subscribe") say(`* ${from} asks to see your presence`);
  }
}

/**
 * An error as one line of text. Node's connection errors may carry an empty message (an
 * AggregateError of every address tried, for one): their code, or the inner errors, say it.
 */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err) || "unknown error";
  const inner = err instanceof AggregateError ? err.errors.map(describeError) : [];
  const code = (err as { code?: unknown }).code;
  const parts = [err.message, inner.length ? [...new Set(inner)].join("; ") : ""].filter(Boolean);
  if (parts.length === 0 && typeof code === "string") parts.push(code);
  if (parts.length === 0 && err.name === "TimeoutError") parts.push("no answer from the server in time");
  return parts.join(": ") || err.name || "unknown error";
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.insecure) {
    // For a test server with a self-signed certificate: never on a real network.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
  }
  const client: LicensedClient = licensedClient({
    service: opts.service ?? `xmpp://${opts.domain}`,
    domain: opts.domain,
    username: opts.username,
    password: opts.password,
    ...(opts.resource ? { resource: opts.resource } : {}),
    // Each step's wait for the server (@xmpp/client's default is 2 s, short for a busy server).
    timeout: Number(opts.timeout) * 1000,
    licence: {
      clientId: opts["client-id"]!,
      keyId: opts["key-id"]!,
      version: opts.version!,
      platform: opts.platform ?? platformName(),
      privateKeyPem: readFileSync(opts.key!, "utf8"),
    },
  });
  let recipient = opts.to;
  let refused = false;
  let online = false;

  // One way out, whatever asks for it first (/quit, the end of input, a refusal, Ctrl-C):
  // @xmpp/client's stop() must not run twice at once (a second call detaches the XML parser
  // while the server's answer to the first is still arriving).
  let quitting: Promise<never> | undefined;
  const quit = (code: number): Promise<never> => {
    quitting ??= (async () => {
      client.reconnect.stop();
      try {
        await client.stop();
      } catch {
        // The connection is going away anyway; what matters is the exit status.
      }
      if (code === 0) say("* disconnected");
      process.exit(code);
    })();
    return quitting;
  };

  client.on("licence-refused", (r: LicenceRefusedError) => {
    refused = true;
    say(refusalNotice(r));
  });
  client.on("licence", (accepted: { recommended?: { version: string; url?: string } }) => {
    if (accepted.recommended) {
      const url = accepted.recommended.url ? ` at ${accepted.recommended.url}` : "";
      say(`! version ${accepted.recommended.version} is recommended: get it${url}`);
    }
  });
  // Before the client is online, start() rejects with the same error and it is reported there.
  client.on("error", (err: Error) => {
    if (online && !licenceRefusal(err)) say(`! error: ${describeError(err)}`);
  });
  client.on("stanza", showStanza);
  client.on("disconnect", () => {
    if (refused) void quit(EXIT_REFUSED);
    else if (online && !quitting) say("* connection lost, reconnecting");
  });

  try {
    const jid = await client.start();
    online = true;
    say(`* connected as ${jid.toString()} (mode ${client.licence.offer?.mode ?? "not offered"})`);
  } catch (err) {
    const r = licenceRefusal(err);
    if (!r) say(`! cannot connect: ${describeError(err)}`);
    else if (!refused) say(refusalNotice(r));
    return quit(r ? EXIT_REFUSED : EXIT_FAILED);
  }
  await client.send(xml("presence"));

  const input = createInterface({ input: process.stdin });
  input.on("line", (line) => {
    void command(line.trim()).catch((err: unknown) => say(`! ${describeError(err)}`));
  });
  input.on("close", () => void quit(0));
  process.once("SIGINT", () => void quit(0));

  async function command(line: string): Promise<void> {
    if (line === "") return;
    if (line === "/quit") return quit(0);
    if (line.startsWith("/to ")) {
      recipient = line.slice(4).trim();
      say(`* talking to ${recipient}`);
      return;
    }
    if (line.startsWith("/presence")) {
      const [, show, ...status] = line.split(/\s+/);
      await client.send(
        xml(
          "presence",
          {},
          show && show !== "available" ? xml("show", {}, show) : undefined,
          status.length ? xml("status", {}, status.join(" ")) : undefined,
        ),
      );
      return;
    }
    if (line.startsWith("/")) {
      say("! commands: /to JID, /presence [show] [status], /quit");
      return;
    }
    if (!recipient) {
      say("! choose a recipient first: /to JID");
      return;
    }
    await client.send(xml("message", { to: recipient, type: "chat" }, xml("body", {}, line)));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `licensed-chat: ${err instanceof Error ? (err.stack ?? describeError(err)) : describeError(err)}\n`,
  );
  process.exit(EXIT_FAILED);
});
