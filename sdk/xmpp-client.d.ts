/**
 * Type declarations for the parts of @xmpp/client (and the ltx parser it is
 * built on) that the SDK and the tests use; neither package ships its own. A project
 * that copies sdk/ gets them with it (keep this file where its tsconfig includes it).
 */

declare module "@xmpp/client" {
  import type { EventEmitter } from "node:events";

  /** An ltx element, as @xmpp/client builds and parses them. */
  export interface Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: (Element | string)[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getAttr(name: string): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    append(...children: (Element | string)[]): Element;
    toString(): string;
  }

  export interface Jid {
    local: string;
    domain: string;
    resource: string;
    toString(): string;
    bare(): Jid;
  }

  export type Child = Element | string | undefined | null | false;

  export function xml(
    name: string,
    attrs?: Record<string, string | number | undefined> | null,
    ...children: Child[]
  ): Element;

  export type Authenticate = (
    credentials: { username: string; password: string },
    mechanism: string,
  ) => Promise<void>;

  export interface ClientOptions {
    service: string;
    domain: string;
    resource?: string;
    username?: string;
    password?: string;
    credentials?: (authenticate: Authenticate, mechanisms: string[]) => Promise<void>;
    timeout?: number;
    /** The SASL2 <user-agent/> (default: one with a random id per client object). */
    userAgent?: Element;
  }

  /** A FAST token as the client keeps it (XEP-0484). */
  export interface FastToken {
    mechanism: string;
    token: string;
    expiry: string;
  }

  export interface Client extends EventEmitter {
    jid: Jid | null;
    status: string;
    socket: { secure?: boolean } | null;
    options: ClientOptions;
    start(): Promise<Jid>;
    stop(): Promise<unknown>;
    disconnect(): Promise<unknown>;
    send(...elements: Element[]): Promise<void>;
    write(text: string): Promise<void>;
    isSecure(): boolean;
    reconnect: { stop(): void };
    /** XEP-0198, on by default: enables after binding, resumes after a reconnection. */
    streamManagement: EventEmitter & { enabled: boolean; id: string; inbound: number; outbound: number };
    iqCaller: { request(iq: Element, timeout?: number): Promise<Element> };
    /** XEP-0484: where the client keeps its token (in memory unless these are replaced). */
    fast: {
      saveToken(token: FastToken): Promise<void>;
      fetchToken(): Promise<FastToken | undefined>;
      deleteToken(): Promise<void>;
    };
    iqCallee: {
      get(xmlns: string, name: string, handler: (ctx: unknown) => unknown): void;
      set(xmlns: string, name: string, handler: (ctx: unknown) => unknown): void;
    };
  }

  export function client(options: ClientOptions): Client;
}

declare module "ltx/src/parse.js" {
  import type { Element } from "@xmpp/client";
  export default function parse(text: string): Element;
}
