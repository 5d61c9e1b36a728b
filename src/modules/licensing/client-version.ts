/**
 * Software Version (XEP-0092) asked of a bound client that did not prove a licence,
 * for statistics: the answer is recorded as unverified (anyone can claim any name).
 */
import type { Jid } from "../../core/jid.js";
import type { Router } from "../../core/router.js";
import { x } from "../../core/xml/element.js";
import { NS_VERSION } from "../../core/xml/namespaces.js";

const MAX_LENGTH = 64;

const clip = (s: string | undefined) => {
  const t = s?.trim().replace(/\p{Cc}/gu, "");
  return t ? t.slice(0, MAX_LENGTH) : undefined;
};

/** The client's name and version, or undefined when it does not answer (in time) or answers an error. */
export async function askClientVersion(
  router: Router,
  jid: Jid,
  timeoutMs: number,
): Promise<{ name: string; version: string | undefined } | undefined> {
  const reply = await router.request(
    x("iq", { type: "get" }, x("query", { xmlns: NS_VERSION })),
    jid,
    timeoutMs,
  );
  // The reply must come from the session asked: request ids are not secrets.
  if (reply?.attrs.type !== "result" || reply.attrs.from !== jid.toString()) return undefined;
  const query = reply.getChild("query", NS_VERSION);
  const name = clip(query?.getChildText("name"));
  if (name === undefined) return undefined;
  return { name, version: clip(query?.getChildText("version")) };
}

export { NS_VERSION } from "../../core/xml/namespaces.js";
