/**
 * IQ handlers registered by (target, type, namespace): the dispatcher claims
 * `iq/host` and `iq/bare` events, runs the handler and answers with its result
 * or with the StanzaError it throws. Unknown get/set IQs get service-unavailable
 * (RFC 6120 §8.2.3, RFC 6121 §8.5).
 */

import { StanzaError } from "./errors.js";
import type { StanzaEvent } from "./events.js";
import type { Jid } from "./jid.js";
import type { ClientSession } from "./session.js";
import type { XmlElement } from "./xml/element.js";

export type IqTarget = "host" | "bare";
export type IqType = "get" | "set";

export interface IqRequest {
  stanza: XmlElement;
  /** The first child element (the query). */
  payload: XmlElement;
  from: Jid;
  to: Jid;
  /** The local session the IQ came from, when it came from one. */
  origin?: ClientSession;
  /**
   * Sends the result now, before what the handler sends next (e.g. a roster push after the
   * result of the roster set, in the order clients expect); the handler's return value is
   * then not sent again.
   */
  reply(result?: XmlElement): void;
}

/** Return the payload of the result (or nothing for an empty result); throw StanzaError to refuse. */
export type IqHandler = (
  req: IqRequest,
) => XmlElement | undefined | void | Promise<XmlElement | undefined | void>;

export interface IqSpec {
  target: IqTarget | "both";
  type: IqType;
  xmlns: string;
  /** Restrict to one payload element name (default: any name in the namespace). */
  name?: string;
}

export class IqRegistry {
  private readonly handlers = new Map<string, IqHandler>();

  private static key(target: IqTarget, type: string, xmlns: string): string {
    return target + "\u0000" + type + "\u0000" + xmlns;
  }

  /** Registers a handler; returns the function that removes it. */
  register(spec: IqSpec, handler: IqHandler): () => void {
    const targets: IqTarget[] = spec.target === "both" ? ["host", "bare"] : [spec.target];
    const wrapped: IqHandler = spec.name
      ? (req) => {
          if (req.payload.name !== spec.name) throw new StanzaError("service-unavailable");
          return handler(req);
        }
      : handler;
    const keys = targets.map((t) => IqRegistry.key(t, spec.type, spec.xmlns));
    for (const k of keys) {
      if (this.handlers.has(k))
        throw new Error(`IQ handler already registered for ${k.replaceAll("\u0000", " ")}`);
      this.handlers.set(k, wrapped);
    }
    return () => {
      for (const k of keys) if (this.handlers.get(k) === wrapped) this.handlers.delete(k);
    };
  }

  find(target: IqTarget, type: string, xmlns: string | undefined): IqHandler | undefined {
    if (xmlns === undefined) return undefined;
    return this.handlers.get(IqRegistry.key(target, type, xmlns));
  }
}

/** Validates an incoming IQ's shape (RFC 6120 §8.2.3); returns the payload or throws bad-request. */
export function iqPayload(ev: StanzaEvent): XmlElement {
  return iqRequestPayload(ev.stanza);
}

/**
 * The same check for an IQ get/set that reaches a service's own route (rooms, upload) rather
 * than the registry: exactly one child element, and an id to answer.
 */
export function iqRequestPayload(stanza: XmlElement): XmlElement {
  if (stanza.attrs.id === undefined) throw new StanzaError("bad-request", "IQ without id");
  const elements = stanza.elements();
  if (elements.length !== 1)
    throw new StanzaError("bad-request", "IQ get/set must carry exactly one child element");
  return elements[0]!;
}
