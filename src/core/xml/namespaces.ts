/**
 * Every XML namespace the server speaks, in one table: the XMPP core (RFC 6120/6121), the
 * XEPs the modules implement, and the server's own. Modules import their names from here
 * instead of spelling the URIs again.
 */

// XML itself.
export const NS_XML = "http://www.w3.org/XML/1998/namespace";
export const NS_XMLNS = "http://www.w3.org/2000/xmlns/";

// RFC 6120: streams and their negotiation.
/** The `stream:` prefix of <stream:stream/> and <stream:features/>. */
export const NS_STREAM = "http://etherx.jabber.org/streams";
/** Stream error conditions. */
export const NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams";
export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
export const NS_CLIENT = "jabber:client";
export const NS_SERVER = "jabber:server";
export const NS_COMPONENT = "jabber:component:accept";
export const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
export const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
export const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";
/** RFC 3921 session establishment, kept for old clients (RFC 6121 appendix E). */
export const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";
export const NS_SASL2 = "urn:xmpp:sasl:2";
export const NS_SASL_CB = "urn:xmpp:sasl-cb:0";
/** RFC 7395: the <open/> and <close/> of a stream over WebSocket. */
export const NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";

// RFC 6121: roster and presence.
export const NS_ROSTER = "jabber:iq:roster";
export const NS_ROSTERVER = "urn:xmpp:features:rosterver";
export const NS_PRE_APPROVAL = "urn:xmpp:features:pre-approval";

// XEPs.
export const NS_DATA = "jabber:x:data";
export const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
export const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
export const NS_PRIVATE = "jabber:iq:private";
export const NS_LAST = "jabber:iq:last";
export const NS_VCARD = "vcard-temp";
export const NS_REGISTER = "jabber:iq:register";
export const NS_REGISTER_FEATURE = "http://jabber.org/features/iq-register";
export const NS_VERSION = "jabber:iq:version";
export const NS_PING = "urn:xmpp:ping";
export const NS_TIME = "urn:xmpp:time";
export const NS_DELAY = "urn:xmpp:delay";
export const NS_HINTS = "urn:xmpp:hints";
export const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";
export const NS_BLOCKING = "urn:xmpp:blocking";
export const NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors";

// Switchboard's own.
/** Client-licence proofs (docs/licensing-protocol.md). */
export const NS_LICENCE = "urn:switchboard:client-licence:0";
