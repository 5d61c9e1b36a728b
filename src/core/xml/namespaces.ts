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
/** XEP-0484 Fast Authentication Streamlining Tokens. */
export const NS_FAST = "urn:xmpp:fast:0";
/** XEP-0386 Bind 2. */
export const NS_BIND2 = "urn:xmpp:bind:0";
export const NS_SASL_CB = "urn:xmpp:sasl-cb:0";
/** RFC 7395: the <open/> and <close/> of a stream over WebSocket. */
export const NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
/** XEP-0220 Server Dialback (the `db:` prefix) and its stream feature with dialback errors. */
export const NS_DIALBACK = "jabber:server:dialback";
export const NS_DIALBACK_FEATURE = "urn:xmpp:features:dialback";

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
/** XEP-0153 vCard-based avatars: the photo hash in presence. */
export const NS_VCARD_UPDATE = "vcard-temp:x:update";
/** XEP-0084 user avatar nodes. */
export const NS_AVATAR_DATA = "urn:xmpp:avatar:data";
export const NS_AVATAR_METADATA = "urn:xmpp:avatar:metadata";
/** XEP-0398: the server converts between the two. */
export const NS_PEP_VCARD_CONVERSION = "urn:xmpp:pep-vcard-conversion:0";
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
/** XEP-0359 stable and unique stanza ids. */
export const NS_SID = "urn:xmpp:sid:0";
/** XEP-0297 stanza forwarding. */
export const NS_FORWARD = "urn:xmpp:forward:0";
/** XEP-0280 message carbons. */
export const NS_CARBONS = "urn:xmpp:carbons:2";
export const NS_RECEIPTS = "urn:xmpp:receipts";
export const NS_CHAT_MARKERS = "urn:xmpp:chat-markers:0";
/** XEP-0045 multi-user chat: joining, and the user, admin and owner protocols. */
export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
export const NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin";
export const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
/** XEP-0249 direct MUC invitations. */
export const NS_CONFERENCE = "jabber:x:conference";
/** XEP-0313 message archive management (and XEP-0441 preferences). */
export const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
export const NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event";
export const NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner";
export const NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors";
export const NS_CAPS = "http://jabber.org/protocol/caps";
export const NS_MAM = "urn:xmpp:mam:2";
/** XEP-0059 result set management. */
export const NS_RSM = "http://jabber.org/protocol/rsm";
/** XEP-0352 client state indication. */
export const NS_CSI = "urn:xmpp:csi:0";
export const NS_SM = "urn:xmpp:sm:3";
/** XEP-0357 push notifications, and its summary form. */
export const NS_PUSH = "urn:xmpp:push:0";
export const NS_PUSH_SUMMARY = "urn:xmpp:push:summary";
export const NS_PUBSUB_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options";

// Switchboard's own.
/** Application conditions of federation refusals (a stream error's policy-violation). */
export const NS_FEDERATION = "urn:switchboard:federation:0";
/** Client-licence proofs (docs/licensing-protocol.md). */
export const NS_LICENCE = "urn:switchboard:client-licence:0";

// XEP-0215: external service discovery (STUN and TURN servers for calls).
export const NS_EXTDISCO = "urn:xmpp:extdisco:2";

// XEP-0363: HTTP file upload.
export const NS_HTTP_UPLOAD = "urn:xmpp:http:upload:0";
