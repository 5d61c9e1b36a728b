/**
 * HTTP file upload (XEP-0363) as a service on its own domain (`upload.domain`, default
 * upload.<domain>), listed in the server's disco#items. A local account asks the service
 * for a slot with `<request filename size content-type/>`; the answer points at the
 * server's HTTP listener (`/upload/<id>/<filename>`), with a secret for the PUT in an
 * Authorization header. The PUT is checked against the slot (secret, expiry, size,
 * content type); files are kept under `upload.directory` (`<dataDir>/uploads`) and served by GET to anyone
 * holding the URL. A per-account quota bounds what one account keeps, and a timer removes
 * files after `expiryDays` and slots nobody used.
 */
import path from "node:path";
import { StanzaError } from "../../core/errors.js";
import { iqRequestPayload } from "../../core/iq.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_HTTP_UPLOAD } from "../../core/xml/namespaces.js";
import type { DiscoApi } from "../disco/index.js";
import { uploadConfigSection } from "./config.js";
import { filenameProblem } from "./filename.js";
import { UPLOAD_PATH, uploadHttp } from "./http.js";
import { type UploadRecord, UploadStore } from "./store.js";

export interface UploadApi {
  /** The service's domain. */
  readonly domain: string;
  /** Removes expired files and unused slots now (the scheduled cleanup's work); returns how many. */
  removeExpired(): Promise<number>;
}

/** type/subtype with RFC 9110 token characters, parameters allowed. */
const CONTENT_TYPE = /^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+(\s*;.*)?$/i;

export default defineModule({
  name: "upload",
  description: "HTTP file upload on a service domain (XEP-0363)",
  xeps: [{ xep: "0363", version: "1.1.0", status: "complete" }],
  config: uploadConfigSection,
  setup(ctx) {
    const settings = ctx.config.upload;
    if (!settings.enabled) return;
    const domain = settings.domain !== "" ? settings.domain.toLowerCase() : `upload.${ctx.domain}`;
    const store = new UploadStore(
      ctx.storage.documents<UploadRecord>("uploads"),
      path.resolve(ctx.config.dataDir, settings.directory || "uploads"),
      ctx.clock,
    );
    // The listener's URL is known once it listens (it may be a port chosen at start).
    let publicUrl: (() => string) | undefined;
    ctx.contribute(
      "http",
      uploadHttp(store, (url) => {
        publicUrl = url;
      }),
    );

    const discoInfo = () =>
      x(
        "query",
        { xmlns: NS_DISCO_INFO },
        x("identity", { category: "store", type: "file", name: settings.name }),
        ...[NS_HTTP_UPLOAD, NS_DISCO_INFO, NS_DISCO_ITEMS].map((f) => x("feature", { var: f })),
        x(
          "x",
          { xmlns: NS_DATA, type: "result" },
          x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", {}, NS_HTTP_UPLOAD)),
          x("field", { var: "max-file-size" }, x("value", {}, String(settings.maxFileBytes))),
        ),
      );

    const slot = async (request: XmlElement, from: Jid): Promise<XmlElement> => {
      if (!ctx.router.isLocalDomain(from.domain) || from.local === "")
        throw new StanzaError("forbidden", "only accounts of this server may upload files");
      const base = publicUrl?.() ?? "";
      if (base === "") throw new StanzaError("service-unavailable", "the HTTP listener is not running");
      const filename = request.attrs.filename ?? "";
      const problem = filenameProblem(filename);
      if (problem !== undefined) throw new StanzaError("not-acceptable", problem, { type: "modify" });
      const sizeText = request.attrs.size ?? "";
      if (!/^\d{1,15}$/.test(sizeText))
        throw new StanzaError("bad-request", "size must be a number of bytes");
      const size = Number(sizeText);
      if (size > settings.maxFileBytes)
        throw new StanzaError("not-acceptable", `the file is larger than ${settings.maxFileBytes} bytes`, {
          type: "modify",
          appCondition: x(
            "file-too-large",
            { xmlns: NS_HTTP_UPLOAD },
            x("max-file-size", {}, String(settings.maxFileBytes)),
          ),
        });
      const contentType = (request.attrs["content-type"] ?? "").trim();
      if (contentType !== "" && !CONTENT_TYPE.test(contentType))
        throw new StanzaError("bad-request", "content-type is not a media type");
      const owner = ctx.accountKey(from);
      if (settings.quotaBytesPerUser > 0) {
        const used = await store.usage(owner);
        if (used + size > settings.quotaBytesPerUser)
          throw new StanzaError(
            "resource-constraint",
            `the upload quota of ${settings.quotaBytesPerUser} bytes would be exceeded (${used} used)`,
            { type: "wait" },
          );
      }
      const { id, secret } = await store.createSlot(
        { owner, filename, size, contentType },
        settings.slotTtlSeconds * 1000,
      );
      const url = `${base}${UPLOAD_PATH}/${id}/${encodeURIComponent(filename)}`;
      return x(
        "slot",
        { xmlns: NS_HTTP_UPLOAD },
        x("put", { url }, x("header", { name: "Authorization" }, `Bearer ${secret}`)),
        x("get", { url }),
      );
    };

    ctx.addRoute(domain, {
      kind: "service",
      deliver: async (stanza, from, to) => {
        if (stanza.name !== "iq") {
          if (stanza.name === "message" && stanza.attrs.type !== "error")
            throw new StanzaError("service-unavailable");
          return;
        }
        const type = stanza.attrs.type;
        if (type !== "get" && type !== "set") return;
        if (to.local !== "" || to.resource !== "") throw new StanzaError("service-unavailable");
        const payload = iqRequestPayload(stanza);
        let answer: XmlElement | undefined;
        if (type === "get" && payload?.name === "query" && payload.attrs.xmlns === NS_DISCO_INFO) {
          if (payload.attrs.node !== undefined) throw new StanzaError("item-not-found", "no such node");
          answer = discoInfo();
        } else if (type === "get" && payload?.name === "query" && payload.attrs.xmlns === NS_DISCO_ITEMS) {
          if (payload.attrs.node !== undefined) throw new StanzaError("item-not-found", "no such node");
          answer = x("query", { xmlns: NS_DISCO_ITEMS });
        } else if (type === "get" && payload?.name === "request" && payload.attrs.xmlns === NS_HTTP_UPLOAD) {
          answer = await slot(payload, from);
        } else {
          throw new StanzaError("service-unavailable");
        }
        const reply = x(
          "iq",
          { type: "result", id: stanza.attrs.id, from: domain, to: from.toString() },
          answer,
        );
        await ctx.router.deliver(reply, to, from);
      },
    });

    const disco = ctx.api<DiscoApi>("disco");
    if (disco) ctx.onUnload(disco.addItems("host", () => [{ jid: domain, name: settings.name }]));

    // A deleted account's files go with it (its key may be given to a new account later).
    ctx.hook("account/deleted", async ({ username }) => {
      const n = await store.removeOwnedBy(username);
      if (n > 0) ctx.log.info({ account: username, removed: n }, "uploads of a deleted account removed");
    });

    const maxAgeMs = settings.expiryDays * 86_400_000;
    const removeExpired = async (): Promise<number> => {
      const n = await store.removeExpired(maxAgeMs);
      if (n > 0) ctx.log.info({ removed: n }, "expired uploads removed");
      return n;
    };
    ctx.setInterval(() => {
      removeExpired().catch((err: unknown) => ctx.log.error({ err }, "removing expired uploads failed"));
    }, settings.cleanupIntervalMinutes * 60_000);

    ctx.provide<UploadApi>({ domain, removeExpired });

    ctx.metric({
      name: "switchboard_upload_slots_total",
      help: "Upload slots handed out",
      type: "counter",
      collect: () => store.stats.slots,
    });
    ctx.metric({
      name: "switchboard_upload_files_total",
      help: "Files uploaded into slots",
      type: "counter",
      collect: () => store.stats.uploads,
    });
    ctx.metric({
      name: "switchboard_upload_bytes_total",
      help: "Bytes of files uploaded",
      type: "counter",
      collect: () => store.stats.uploadedBytes,
    });
    ctx.metric({
      name: "switchboard_upload_expired_total",
      help: "Uploaded files and unused slots removed after their expiry",
      type: "counter",
      collect: () => store.stats.removed,
    });
  },
});
