/**
 * XEP-0156 discovery of the WebSocket endpoint: /.well-known/host-meta (XRD) and
 * /.well-known/host-meta.json (JRD), each with one link of relation
 * urn:xmpp:alt-connections:websocket to the endpoint's public URL (http.publicUrl with
 * ws/wss instead of http/https). Readable from any origin (CORS `*`, without
 * credentials), as XEP-0156 recommends for web clients hosted elsewhere.
 */
import { escapeAttr } from "../../core/xml/element.js";
import type { HttpPlugin } from "../../http/context.js";
import { WEBSOCKET_PATH } from "./endpoint.js";

export const REL_WEBSOCKET = "urn:xmpp:alt-connections:websocket";
const NS_XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0";

/** The WebSocket URL clients are told, from the listener's public base URL. */
export function websocketUrl(publicUrl: string): string {
  return publicUrl.replace(/^http/, "ws") + WEBSOCKET_PATH;
}

export function hostMeta(): HttpPlugin {
  return {
    name: "host-meta",
    register(app, ctx) {
      const cors = { "access-control-allow-origin": "*" };
      app.get("/.well-known/host-meta", async (_request, reply) => {
        const href = escapeAttr(websocketUrl(ctx.publicUrl));
        return reply
          .headers(cors)
          .type("application/xrd+xml; charset=utf-8")
          .send(
            `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='${NS_XRD}'>\n  <Link rel='${REL_WEBSOCKET}' href='${href}'/>\n</XRD>\n`,
          );
      });
      app.get("/.well-known/host-meta.json", async (_request, reply) => {
        return reply
          .headers(cors)
          .type("application/json; charset=utf-8")
          .send({ links: [{ rel: REL_WEBSOCKET, href: websocketUrl(ctx.publicUrl) }] });
      });
    },
  };
}
