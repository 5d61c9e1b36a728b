/**
 * User avatar to vCard-based avatar conversion (XEP-0398). An account's avatar lives in two
 * places kept in step:
 *
 * - published with XEP-0084 (data then metadata over PEP), it is copied into the account's
 *   vCard PHOTO, which anyone may read, so only when the data node's access model is open
 *   (XEP-0398 §7): a presence-only avatar stays with the contacts allowed to see it. An
 *   empty metadata item (avatar disabled) removes the PHOTO, likewise for an open node;
 * - set with a vCard PHOTO (XEP-0153), it is published as XEP-0084 data and metadata, the
 *   nodes created open like the vCard itself (an existing node keeps its access model), and
 *   notified to the contacts who want it; a vCard whose PHOTO is gone disables the PEP
 *   avatar it had put there (empty metadata, XEP-0084 §4.2) and leaves any other alone.
 *
 * A vCard PHOTO that is not base64 of an image is refused (not-acceptable) before it is
 * stored; a PEP avatar that cannot be copied (missing data, wrong hash, not an image, too
 * large for the vCard) is left where it is with a log line. Changes this module makes carry
 * its name as their origin and it ignores those, so no conversion triggers the reverse one;
 * an avatar already in place is not written again either.
 *
 * The hash of the vCard photo goes into every available presence the account's clients send,
 * broadcast or directed (XEP-0398 §4): added when missing, put into an
 * `<x xmlns='vcard-temp:x:update'/>` without `<photo/>`, left alone when the client set a
 * `<photo/>` itself (XEP-0153 lets it say it has none or is not ready). The presence is not
 * sent again when the avatar changes (§5.1: clients resend it).
 */
import { randomBytes } from "node:crypto";
import { StanzaError } from "../../core/errors.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { x } from "../../core/xml/element.js";
import {
  NS_AVATAR_DATA,
  NS_AVATAR_METADATA,
  NS_PEP_VCARD_CONVERSION,
  NS_VCARD_UPDATE,
} from "../../core/xml/namespaces.js";
import type { PepApi, PepPublishedEvent } from "../pep/index.js";
import type { VcardApi, VcardChangedEvent } from "../vcard/index.js";
import {
  avatarPayloads,
  checkImage,
  decodeBase64,
  type Photo,
  readMetadata,
  vcardPhoto,
  withPhoto,
} from "./photo.js";

const NAME = "avatar-conversion";
/** Key of the stored hash of an account's vCard photo ("" for none). */
const HASH_KEY = "vcard-photo";
/** Before the presence module (0) handles and routes the presence. */
const PRESENCE_PRIORITY = 50;

export default defineModule({
  name: NAME,
  description: "Avatars kept in step between PEP (XEP-0084) and the vCard (XEP-0153), hash in presence",
  xeps: [
    { xep: "0398", version: "1.0.0", status: "complete" },
    {
      xep: "0153",
      version: "1.1",
      status: "partial",
      notes: "the server adds the photo hash to its users' presence (XEP-0398 §4)",
    },
  ],
  dependencies: ["vcard", "pep"],
  setup(ctx) {
    const vcards = ctx.api<VcardApi>("vcard");
    const pep = ctx.api<PepApi>("pep");
    if (!vcards || !pep) throw new Error("the vcard and pep modules are not loaded");
    const hashes = ctx.storage.keyValue(NAME);

    ctx.addFeature(NS_PEP_VCARD_CONVERSION, "account");

    /** The SHA-1 of the account's vCard photo, "" for none; worked out once from the vCard. */
    const photoHash = async (username: string): Promise<string> => {
      const known = await hashes.get(username, HASH_KEY);
      if (known !== undefined) return known;
      const reading = vcardPhoto(await vcards.get(username));
      const hash = reading.kind === "photo" ? reading.photo.hash : "";
      await hashes.set(username, HASH_KEY, hash);
      return hash;
    };

    // A client's vCard: a PHOTO must be an image, or the vCard is refused whole.
    ctx.hook("vcard/setting", ({ vcard }) => {
      const reading = vcardPhoto(vcard);
      if (reading.kind === "invalid") throw new StanzaError("not-acceptable", reading.reason);
      return false;
    });

    /** vCard → PEP (XEP-0398 §3.2). */
    const fromVcard = async ({ username, vcard }: VcardChangedEvent): Promise<void> => {
      const owner = ctx.accountJid(username);
      const previous = await hashes.get(username, HASH_KEY);
      const reading = vcardPhoto(vcard);
      const hash = reading.kind === "photo" ? reading.photo.hash : "";
      await hashes.set(username, HASH_KEY, hash);
      const current = await pep.item(owner, NS_AVATAR_METADATA);
      const meta = current && readMetadata(current.payload);
      if (reading.kind === "photo") {
        const { photo } = reading;
        if (
          meta?.kind === "info" &&
          meta.id === photo.hash &&
          (await pep.item(owner, NS_AVATAR_DATA, photo.hash))
        )
          return; // already the PEP avatar
        const { data, metadata } = avatarPayloads(photo);
        // Data first, so a client notified of the metadata can fetch the image (§3.2).
        await pep.publish(owner, NS_AVATAR_DATA, photo.hash, data, { origin: NAME, accessModel: "open" });
        await pep.publish(owner, NS_AVATAR_METADATA, photo.hash, metadata, {
          origin: NAME,
          accessModel: "open",
        });
        ctx.log.debug({ username, hash: photo.hash }, "vCard photo published as the PEP avatar");
        return;
      }
      if (reading.kind === "external")
        ctx.log.debug({ username }, "vCard photo by URL: not published over PEP");
      // The PHOTO is gone: disable the PEP avatar only if it is the one the vCard had.
      if (previous && meta?.kind === "info" && meta.id === previous) {
        await pep.publish(
          owner,
          NS_AVATAR_METADATA,
          randomBytes(8).toString("hex"),
          x("metadata", { xmlns: NS_AVATAR_METADATA }),
          { origin: NAME },
        );
        ctx.log.debug({ username }, "vCard photo removed: PEP avatar disabled");
      }
    };

    /** PEP → vCard (XEP-0398 §3.1). */
    const fromPep = async ({ owner, account, payload, accessModel }: PepPublishedEvent): Promise<void> => {
      const meta = readMetadata(payload);
      if (meta.kind === "external") {
        ctx.log.debug({ account }, "PEP avatar only by URL: the vCard is left as it is");
        return;
      }
      if (meta.kind === "disabled") {
        if (accessModel !== "open") return;
        await setVcardPhoto(account, undefined);
        return;
      }
      const photo = await pepImage(owner, account, meta.id, meta.type);
      if (photo) await setVcardPhoto(account, photo);
    };

    /** The image a metadata info points to, checked; undefined (with the reason logged) when it is not to be copied. */
    const pepImage = async (owner: Jid, account: string, id: string, type: string | undefined) => {
      const data = await pep.item(owner, NS_AVATAR_DATA, id);
      if (!data) {
        ctx.log.warn(
          { account, id },
          "PEP avatar metadata names no stored data item; the vCard is left as it is",
        );
        return undefined;
      }
      if (data.accessModel !== "open") {
        ctx.log.debug(
          { account, accessModel: data.accessModel },
          "PEP avatar not public: not copied into the vCard",
        );
        return undefined;
      }
      const bytes = data.payload.name === "data" ? decodeBase64(data.payload.text()) : undefined;
      const checked: Photo | string = bytes ? checkImage(bytes, type) : "the data item is not base64";
      if (typeof checked === "string") {
        ctx.log.warn({ account, id, reason: checked }, "PEP avatar not copied into the vCard");
        return undefined;
      }
      if (checked.hash !== id.toLowerCase()) {
        ctx.log.warn(
          { account, id, sha1: checked.hash },
          "PEP avatar id is not the SHA-1 of its data: not copied into the vCard",
        );
        return undefined;
      }
      return checked;
    };

    const setVcardPhoto = async (username: string, photo: Photo | undefined): Promise<void> => {
      const hash = photo?.hash ?? "";
      let wrote = false;
      try {
        wrote = await vcards.update(username, NAME, (current) => {
          const reading = vcardPhoto(current);
          const had = reading.kind === "photo" ? reading.photo.hash : "";
          if (had === hash && reading.kind !== "external") return false;
          return withPhoto(current, photo);
        });
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        ctx.log.warn({ username, reason: err.message }, "PEP avatar not copied into the vCard");
        return;
      }
      if (wrote) {
        await hashes.set(username, HASH_KEY, hash);
        ctx.log.debug(
          { username, hash },
          photo ? "PEP avatar copied into the vCard" : "PEP avatar disabled: vCard photo removed",
        );
      }
    };

    // A conversion failing must not turn the client's stored change into an error.
    ctx.hook("vcard/changed", (ev) => {
      if (ev.origin === NAME) return false;
      return fromVcard(ev)
        .catch((err: unknown) =>
          ctx.log.warn({ err, username: ev.username }, "vCard photo not published over PEP"),
        )
        .then(() => false);
    });
    ctx.hook("pep/published", (ev) => {
      if (ev.origin === NAME || ev.node !== NS_AVATAR_METADATA) return false;
      return fromPep(ev)
        .catch((err: unknown) =>
          ctx.log.warn({ err, account: ev.account }, "PEP avatar not copied into the vCard"),
        )
        .then(() => false);
    });

    // XEP-0398 §4: the photo hash in every available presence, broadcast or directed.
    ctx.hook(
      "pre-presence",
      async ({ stanza, session }) => {
        if (stanza.attrs.type !== undefined || !session.username) return false;
        const update = stanza.getChild("x", NS_VCARD_UPDATE);
        if (update?.getChild("photo")) return false;
        let hash: string;
        try {
          hash = await photoHash(session.username);
        } catch (err) {
          // The storage cannot be read now: the presence goes on without the hash (an empty
          // update element says "not ready to advertise an image", XEP-0153 §3.2).
          ctx.log.warn({ err, username: session.username }, "photo hash not added to presence");
          if (!update) stanza.children.push(x("x", { xmlns: NS_VCARD_UPDATE }));
          return false;
        }
        const photo = x("photo", null, hash || undefined);
        if (update) update.children.push(photo);
        else stanza.children.push(x("x", { xmlns: NS_VCARD_UPDATE }, photo));
        return false;
      },
      PRESENCE_PRIORITY,
    );

    ctx.hook("account/deleted", async ({ username }) => {
      await hashes.delete(username, HASH_KEY);
    });
  },
});
