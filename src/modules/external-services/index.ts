/**
 * External service discovery (XEP-0215): the STUN and TURN servers an account's client uses
 * for calls. The operator lists them under `externalServices`; an account of a served domain
 * asks the server's domain with <services/> (all, or one type) and <credentials/> (for one
 * host and type). TURN credentials are either static or made per request with a secret
 * shared with the TURN server (the TURN REST API scheme of coturn's `use-auth-secret`):
 * username "<expiry in Unix seconds>:<bare JID>", password base64(HMAC-SHA1(secret, username)).
 * Without services the feature is neither advertised nor answered.
 */
import { createHmac } from "node:crypto";
import { StanzaError } from "../../core/errors.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_EXTDISCO } from "../../core/xml/namespaces.js";
import { externalServicesConfigSection, type ServiceConfig } from "./config.js";

export interface Credentials {
  username: string;
  password: string;
  /** Unix seconds; undefined for static credentials. */
  expires?: number;
}

/** TURN REST API credentials for `user`, valid `ttlSeconds` from `nowMs`. */
export function turnRestCredentials(
  secret: string,
  user: string,
  nowMs: number,
  ttlSeconds: number,
): Credentials {
  const expires = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expires}:${user}`;
  const password = createHmac("sha1", secret).update(username).digest("base64");
  return { username, password, expires };
}

/** XEP-0082 dateTime in UTC, to the second. */
const utc = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");

export default defineModule({
  name: "external-services",
  description: "STUN and TURN servers for calls (XEP-0215)",
  xeps: [
    {
      xep: "0215",
      version: "1.0.0",
      status: "partial",
      notes: "configured services and credentials; no pushed updates, no extended information forms",
    },
  ],
  config: externalServicesConfigSection,
  setup(ctx) {
    const settings = ctx.config.externalServices;
    const services = settings.services;
    if (services.length === 0) return;

    const credentialsOf = (service: ServiceConfig, requester: Jid): Credentials | undefined => {
      if (service.username !== undefined && service.password !== undefined)
        return { username: service.username, password: service.password };
      if (service.secret === undefined) return undefined;
      const secret = service.secret === true ? settings.secret : service.secret;
      return turnRestCredentials(secret, requester.bareString, ctx.clock.now(), settings.ttlSeconds);
    };

    const element = (service: ServiceConfig, credentials: Credentials | undefined): XmlElement =>
      x("service", {
        type: service.type,
        host: service.host,
        port: String(service.port),
        transport: service.transport,
        name: service.name,
        restricted: service.restricted ? "true" : undefined,
        username: credentials?.username,
        password: credentials?.password,
        expires: credentials?.expires === undefined ? undefined : utc(credentials.expires),
      });

    const list = (request: XmlElement, from: Jid): XmlElement => {
      const type = request.attrs.type;
      const items = services
        .filter((s) => type === undefined || s.type === type)
        // A restricted service's credentials come only with a <credentials/> request.
        .map((s) => element(s, s.restricted ? undefined : credentialsOf(s, from)));
      return x("services", { xmlns: NS_EXTDISCO, type }, ...items);
    };

    const credentials = (request: XmlElement, from: Jid): XmlElement => {
      const wanted = request.getChildren("service");
      if (wanted.length === 0) throw new StanzaError("bad-request", "name a service (host and type)");
      for (const w of wanted) {
        if (w.attrs.host === undefined || w.attrs.type === undefined)
          throw new StanzaError("bad-request", "a service is named by its host and type");
        if (w.attrs.port !== undefined && !/^\d{1,5}$/.test(w.attrs.port))
          throw new StanzaError("bad-request", "port is a number");
      }
      const named = (s: ServiceConfig) =>
        wanted.some(
          ({ attrs: { host, type, port } }) =>
            s.type === type &&
            s.host.toLowerCase() === host!.toLowerCase() &&
            (port === undefined || s.port === Number(port)),
        );
      // In the configured order, as in the list.
      const items: XmlElement[] = [];
      for (const s of services.filter(named)) {
        const c = credentialsOf(s, from);
        if (c) items.push(element(s, c));
      }
      if (items.length === 0) throw new StanzaError("item-not-found", "no credentials for that service");
      return x("credentials", { xmlns: NS_EXTDISCO }, ...items);
    };

    ctx.addFeature(NS_EXTDISCO, "host");
    ctx.handleIq({ target: "host", type: "get", xmlns: NS_EXTDISCO }, ({ payload, from }) => {
      // Credentials for the relays are for the server's own accounts, not for other servers' users.
      if (from.local === "" || !ctx.router.isLocalDomain(from.domain))
        throw new StanzaError("forbidden", "only accounts of this server may discover its services");
      if (payload.name === "services") return list(payload, from);
      if (payload.name === "credentials") return credentials(payload, from);
      throw new StanzaError("bad-request", "expected <services/> or <credentials/>");
    });
    ctx.log.info({ services: services.length }, "external services configured");
  },
});

export { NS_EXTDISCO } from "../../core/xml/namespaces.js";
