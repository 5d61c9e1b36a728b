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
 * and exits with status 3.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { type Element, xml } from "@xmpp/client";
import { type LicensedClient, licensedClient } from "../licensed-client.js";
import { type LicenceRefusedError, licenceRefusal } from "../refusal.js";

const EXIT_REFUSED = 3;

const USAGE = `usage: licensed-chat --jid USER@DOMAIN (--password-file FILE | env CHAT_PASSWORD)
         --key PRIVATE_KEY.pem --client-id ID --key-id ID --version X.Y.Z
         [--platform NAME] [--service xmpp://HOST:PORT] [--resource NAME] [--to JID] [--insecure]`;

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
  client.on("error", (err: Error) => {
    if (!licenceRefusal(err)) say(`! error: ${err.message}`);
  });
  client.on("stanza", showStanza);
  client.on("offline", () => {
    say("* disconnected");
    process.exit(refused ? EXIT_REFUSED : 0);
  });
  client.on("disconnect", () => {
    if (refused) process.exit(EXIT_REFUSED);
  });

  try {
    const jid = await client.start();
    say(`* connected as ${jid.toString()} (mode ${client.licence.offer?.mode ?? "not offered"})`);
  } catch (err) {
    const r = licenceRefusal(err);
    if (!r) say(`! cannot connect: ${(err as Error).message}`);
    else if (!refused) say(refusalNotice(r));
    await client.stop().catch(() => undefined);
    process.exit(r ? EXIT_REFUSED : 1);
  }
  await client.send(xml("presence"));

  const input = createInterface({ input: process.stdin });
  input.on("line", (line) => {
    void command(line.trim()).catch((err: Error) => say(`! ${err.message}`));
  });
  input.on("close", () => {
    void client.stop().catch(() => process.exit(0));
  });

  async function command(line: string): Promise<void> {
    if (line === "") return;
    if (line === "/quit") {
      await client.stop();
      return;
    }
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

main().catch((err: Error) => {
  process.stderr.write(`licensed-chat: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
