/**
 * Reading avatars out of vCards (XEP-0153 PHOTO) and XEP-0084 metadata, and checking that
 * what is inside is an image, so a conversion never copies something it cannot vouch for.
 */
import { createHash } from "node:crypto";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_AVATAR_DATA, NS_AVATAR_METADATA, NS_VCARD } from "../../core/xml/namespaces.js";

/** An image: its bytes, their SHA-1 (hex, the id of XEP-0084 and the hash of XEP-0153) and MIME type. */
export interface Photo {
  bytes: Buffer;
  hash: string;
  type: string;
}

export type PhotoReading =
  | { kind: "none" }
  /** A photo by URL (EXTVAL): there are no bytes to hash or copy. */
  | { kind: "external" }
  | { kind: "photo"; photo: Photo }
  | { kind: "invalid"; reason: string };

const sha1 = (bytes: Buffer) => createHash("sha1").update(bytes).digest("hex");

/** Base64 with or without padding, white space ignored (vCards wrap BINVAL); undefined when it is not base64. */
export function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return undefined;
  if (compact.includes("=") && compact.length % 4 !== 0) return undefined;
  return Buffer.from(compact, "base64");
}

/** The image format its first bytes show, for the formats avatars come in. */
export function sniffImageType(bytes: Buffer): string | undefined {
  const starts = (sig: number[], at = 0) => sig.every((b, i) => bytes[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (starts([0xff, 0xd8, 0xff])) return "image/jpeg";
  if (starts([0x47, 0x49, 0x46, 0x38]) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61)
    return "image/gif";
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return "image/webp";
  return undefined;
}

/** The formats whose signature is checked against the bytes; other image types pass on their name. */
const SNIFFED = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/**
 * Checks bytes claimed to be an image of `type` (or of no stated type): the photo, or why
 * it is not one.
 */
export function checkImage(bytes: Buffer, type: string | undefined): Photo | string {
  if (bytes.length === 0) return "the image is empty";
  const sniffed = sniffImageType(bytes);
  let claimed = type?.trim().toLowerCase();
  if (claimed === "image/jpg") claimed = "image/jpeg";
  if (claimed === undefined || claimed === "") {
    if (!sniffed) return "the image has no type and is in no format the server recognises";
    return { bytes, hash: sha1(bytes), type: sniffed };
  }
  if (!/^image\/[a-z0-9.+-]+$/.test(claimed)) return `${type} is not an image type`;
  if (SNIFFED.has(claimed) && sniffed !== claimed) return `the data is not ${claimed}`;
  return { bytes, hash: sha1(bytes), type: claimed };
}

/** The avatar a vCard carries in its PHOTO. */
export function vcardPhoto(vcard: XmlElement | undefined): PhotoReading {
  const photo = vcard?.getChild("PHOTO");
  if (!photo) return { kind: "none" };
  const binval = photo.getChild("BINVAL")?.text() ?? "";
  if (binval.trim() === "") return photo.getChild("EXTVAL") ? { kind: "external" } : { kind: "none" };
  const bytes = decodeBase64(binval);
  if (!bytes) return { kind: "invalid", reason: "the PHOTO's BINVAL is not base64" };
  const checked = checkImage(bytes, photo.getChildText("TYPE") ?? undefined);
  return typeof checked === "string"
    ? { kind: "invalid", reason: `PHOTO: ${checked}` }
    : { kind: "photo", photo: checked };
}

/** The vCard with its PHOTO replaced by `photo` (or removed), everything else kept. */
export function withPhoto(vcard: XmlElement | undefined, photo: Photo | undefined): XmlElement {
  const next = vcard ? vcard.clone() : x("vCard", { xmlns: NS_VCARD });
  next.removeChildren("PHOTO");
  if (photo)
    next.children.push(
      x("PHOTO", null, x("TYPE", null, photo.type), x("BINVAL", null, photo.bytes.toString("base64"))),
    );
  return next;
}

/** What a metadata item (XEP-0084 §4.2) says of the avatar. */
export type MetadataReading =
  /** No info: the avatar is disabled. */
  | { kind: "disabled" }
  /** Only images by URL: nothing the data node holds. */
  | { kind: "external" }
  | { kind: "info"; id: string; type: string | undefined };

export function readMetadata(metadata: XmlElement): MetadataReading {
  const infos = metadata.getChildren("info");
  if (infos.length === 0) return { kind: "disabled" };
  // XEP-0398 §3.1: the info that does not point to an external URL.
  const inline = infos.find((i) => i.attrs.url === undefined && i.attrs.id);
  return inline ? { kind: "info", id: inline.attrs.id!, type: inline.attrs.type } : { kind: "external" };
}

/** The data and metadata payloads that publish `photo` (XEP-0084 §4.1, §4.2). */
export function avatarPayloads(photo: Photo): { data: XmlElement; metadata: XmlElement } {
  return {
    data: x("data", { xmlns: NS_AVATAR_DATA }, photo.bytes.toString("base64")),
    metadata: x(
      "metadata",
      { xmlns: NS_AVATAR_METADATA },
      x("info", { bytes: String(photo.bytes.length), id: photo.hash, type: photo.type }),
    ),
  };
}
