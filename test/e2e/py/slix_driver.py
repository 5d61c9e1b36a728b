#!/usr/bin/python3
"""A slixmpp client driven over stdin/stdout, for Switchboard's end-to-end tests.

The test process starts one driver per simulated user. The driver logs in
(STARTTLS or direct TLS, one forced SASL mechanism, certificate checks off
because the test server's certificate is self-signed), then:

- prints one JSON object per line on stdout for everything that happens:
  {"event": "session_start", "jid": ..., "mechanism": ..., "tls": ...}
  {"event": "auth_failed", "condition": ...}
  {"event": "stanza", "xml": "<message .../>"}      every stanza received
  {"event": "stream_error", "condition": ..., "text": ...}
  {"event": "disconnected", "reason": ...}
  {"event": "reply", "id": N, "ok": true, "xml": ...} result of command N
  {"event": "reply", "id": N, "ok": false, "error": ...}
- reads one JSON command per line on stdin: {"id": N, "op": ..., ...}
  (see Driver.run_command for the list).

Assertions live in the tests; this script only reports what it saw.
"""

import argparse
import base64
import asyncio
import json
import logging
import ssl
import sys
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq
from slixmpp.xmlstream import tostring

# Only what the commands below use: disco, ping, version, vCard, blocking,
# entity time, last activity. Anything else goes through the raw "iq" command;
# a test adds plugins with --plugin (stream management: xep_0198; client state
# indication: xep_0352, which must see the stream feature at login); the carbons and
# archive commands register theirs.
PLUGINS = ["xep_0030", "xep_0199", "xep_0092", "xep_0054", "xep_0191", "xep_0202", "xep_0012"]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def xml_of(stanza):
    return tostring(stanza.xml, top_level=True)


class Driver:
    def __init__(self, args):
        self.args = args
        mech = None if args.mech == "auto" else args.mech
        self.client = slixmpp.ClientXMPP(args.jid, args.password, sasl_mech=mech)
        c = self.client
        for name in PLUGINS + args.plugin:
            c.register_plugin(name)
        # Set by "cut": the connection goes away on purpose and the driver stays for "reconnect".
        self.reconnecting = False
        self.login_waiters = []
        # slixmpp 1.8 answers see-other-host by reconnecting to the JID's domain on port 5222,
        # not to the address the server named: its own handling is off, and the driver follows
        # the redirect as an application does (on_stream_error, on_disconnected).
        c.max_redirects = -1
        self.redirect = None
        # Subscription requests are answered by the test, never automatically.
        c.auto_authorize = None
        c.auto_subscribe = False
        # No whitespace keepalives: they would blur what the server sends and when.
        c.whitespace_keepalive = False
        # The test server's certificate is self-signed and generated at startup.
        c.ssl_context.check_hostname = False
        c.ssl_context.verify_mode = ssl.CERT_NONE
        if mech is not None and not mech.endswith("-PLUS"):
            self.without_channel_binding()
        c.add_filter("in", self.on_incoming)
        c.add_event_handler("session_start", self.on_session_start)
        c.add_event_handler("failed_auth", self.on_failed_auth)
        c.add_event_handler("failed_all_auth", self.on_failed_all_auth)
        c.add_event_handler("stream_error", self.on_stream_error)
        c.add_event_handler("disconnected", self.on_disconnected)
        c.add_event_handler("connection_failed", self.on_connection_failed)
        c.add_event_handler("session_resumed", self.on_session_resumed)
        c.add_event_handler("sm_enabled", self.on_sm_enabled)
        self.done = asyncio.Event()

    def without_channel_binding(self):
        """Act as a client without channel-binding support (GS2 flag "n").

        slixmpp sends "y" (RFC 5802: "I support channel binding but think the
        server does not") whenever TLS gives it binding data, even when told to
        use a non-PLUS mechanism; a server that offers -PLUS must then reject
        the login as a downgrade. Forcing SCRAM-SHA-x means "no binding".
        """
        mechanisms = self.client["feature_mechanisms"]
        original = mechanisms.sasl_callback

        def credentials(required, optional):
            values = original(required, optional)
            if "channel_binding" in values:
                values["channel_binding"] = b""
            return values

        mechanisms.sasl_callback = credentials

    # ---- events from slixmpp ----

    def on_incoming(self, stanza):
        tag = stanza.xml.tag
        if tag in ("{jabber:client}message", "{jabber:client}presence", "{jabber:client}iq"):
            emit({"event": "stanza", "xml": xml_of(stanza)})
        return stanza

    def tls_version(self):
        transport = self.client.transport
        obj = transport.get_extra_info("ssl_object") if transport is not None else None
        return obj.version() if obj is not None else None

    def on_session_resumed(self, _event):
        self.reconnecting = False
        emit({"event": "session_resumed"})
        self.wake_login_waiters("resumed")

    def on_sm_enabled(self, stanza):
        emit({"event": "sm_enabled", "id": stanza["id"] or None})

    def wake_login_waiters(self, outcome):
        for fut in self.login_waiters:
            if not fut.done():
                fut.set_result(outcome)
        self.login_waiters = []

    def on_session_start(self, _event):
        self.reconnecting = False
        self.wake_login_waiters("started")
        mech = self.client["feature_mechanisms"].mech
        emit(
            {
                "event": "session_start",
                "jid": str(self.client.boundjid),
                "mechanism": mech.name if mech is not None else None,
                "tls": self.tls_version(),
            }
        )

    def on_failed_auth(self, stanza):
        emit({"event": "auth_failed", "condition": stanza["condition"], "text": stanza["text"]})

    def on_failed_all_auth(self, _event):
        emit({"event": "auth_exhausted"})
        self.client.disconnect()

    def on_stream_error(self, error):
        emit(
            {
                "event": "stream_error",
                "condition": error["condition"],
                "text": error["text"],
                "other_host": error["see_other_host"] or None,
            }
        )
        other = error["see_other_host"]
        if error["condition"] == "see-other-host" and other:
            # Connect there once this connection is gone; the driver stays.
            host, _, port = other.rpartition(":")
            self.redirect = (host.strip("[]"), int(port) if port else 5222)
            self.reconnecting = True

    def on_disconnected(self, reason):
        emit({"event": "disconnected", "reason": str(reason) if reason else None})
        if self.redirect is not None:
            self.args.host, self.args.port = self.redirect
            self.redirect = None
            self.connect()
            return
        if not self.reconnecting:
            self.done.set()

    def on_connection_failed(self, error):
        emit({"event": "connection_failed", "reason": str(error)})
        self.done.set()

    # ---- commands from the test ----

    async def send_iq(self, iq, timeout):
        """Sends an IQ and returns the reply's XML, error replies included."""
        try:
            reply = await iq.send(timeout=timeout)
        except IqError as e:
            reply = e.iq
        return xml_of(reply)

    async def run_command(self, cmd):
        c = self.client
        op = cmd["op"]
        timeout = cmd.get("timeout", 10)
        if op == "raw":
            c.send_raw(cmd["xml"])
            return None
        if op == "iq":
            iq = Iq(c, xml=ET.fromstring(cmd["xml"]))
            if not iq["id"]:
                iq["id"] = c.new_id()
            return await self.send_iq(iq, timeout)
        if op == "presence":
            priority = cmd.get("priority")
            c.send_presence(
                pshow=cmd.get("show"),
                pstatus=cmd.get("status"),
                ppriority=priority,
                pto=cmd.get("to"),
                ptype=cmd.get("type"),
            )
            return None
        if op == "subscription":
            # subscribe / subscribed / unsubscribe / unsubscribed
            c.send_presence_subscription(pto=cmd["to"], ptype=cmd["type"])
            return None
        if op == "message":
            msg = c.make_message(mto=cmd["to"], mbody=cmd.get("body"), mtype=cmd.get("type", "chat"))
            if cmd.get("msg_id"):
                msg["id"] = cmd["msg_id"]
            msg.send()
            return None
        if op == "roster_get":
            return xml_of(await c.get_roster(timeout=timeout))
        if op == "roster_set":
            reply = await c.update_roster(
                cmd["jid"], name=cmd.get("name"), groups=cmd.get("groups", []), timeout=timeout
            )
            return xml_of(reply) if reply is not None else None
        if op == "roster_remove":
            reply = await c.del_roster_item(cmd["jid"])
            return xml_of(reply) if reply is not None else None
        if op == "ping":
            return await self.ping(cmd["to"], timeout)
        if op == "version":
            return await self.remote(c["xep_0092"].get_version(cmd["to"], timeout=timeout))
        if op == "disco_info":
            return await self.remote(c["xep_0030"].get_info(jid=cmd["to"], local=False, cached=False, timeout=timeout))
        if op == "vcard_set":
            vcard = c["xep_0054"].make_vcard()
            vcard["FN"] = cmd["fn"]
            if cmd.get("nickname"):
                vcard["NICKNAME"] = cmd["nickname"]
            await c["xep_0054"].publish_vcard(vcard, timeout=timeout)
            return None
        if op == "vcard_get":
            return await self.remote(c["xep_0054"].get_vcard(cmd["to"], local=False, cached=False, timeout=timeout))
        if op == "block":
            return await self.remote(c["xep_0191"].block(cmd["jids"], timeout=timeout))
        if op == "unblock":
            return await self.remote(c["xep_0191"].unblock(cmd["jids"], timeout=timeout))
        if op == "blocklist":
            return await self.remote(c["xep_0191"].get_blocked(timeout=timeout))
        if op == "time":
            return await self.remote(c["xep_0202"].get_entity_time(cmd["to"], timeout=timeout))
        if op == "last":
            return await self.remote(c["xep_0012"].get_last_activity(cmd["to"], timeout=timeout))
        if op == "carbons":
            # XEP-0280 through slixmpp's own plugin: {"enable": true|false}
            if "xep_0280" not in c.plugin:
                c.register_plugin("xep_0280")
            plugin = c["xep_0280"]
            call = plugin.enable if cmd.get("enable", True) else plugin.disable
            return await self.remote(call(timeout=timeout))
        if op == "mam":
            # XEP-0313 through slixmpp's own plugin, paging with its RSM iterator:
            # {"with": JID, "max": N, "reverse": bool} -> JSON list of [archive id, body]
            if "xep_0313" not in c.plugin:
                c.register_plugin("xep_0313")
            found = []
            async for msg in c["xep_0313"].iterate(
                jid=slixmpp.JID(cmd["archive"]) if cmd.get("archive") else None,
                with_jid=slixmpp.JID(cmd["with"]) if cmd.get("with") else None,
                reverse=cmd.get("reverse", False),
                rsm={"max": cmd.get("max", 50)},
            ):
                found.append([msg["mam_result"]["id"], msg["mam_result"]["forwarded"]["stanza"]["body"]])
            return json.dumps(found)
        if op == "muc_join":
            # XEP-0045 through slixmpp's plugin: {"room", "nick", "maxstanzas"?} -> JSON of what
            # join_muc_wait returned: own presence, subject, occupants seen, history bodies
            plugin = self.muc()
            history = {"maxstanzas": cmd["maxstanzas"]} if "maxstanzas" in cmd else {}
            pres, subject, occupants, history_msgs = await plugin.join_muc_wait(
                slixmpp.JID(cmd["room"]), cmd["nick"], timeout=timeout, **history
            )
            return json.dumps(
                {
                    "presence": xml_of(pres),
                    "subject": subject["subject"],
                    "occupants": [str(p["from"]) for p in occupants],
                    "history": [m["body"] for m in history_msgs],
                    "roster": plugin.get_roster(slixmpp.JID(cmd["room"])),
                }
            )
        if op == "muc_configure":
            # The owner fetches the configuration form, sets {"fields": {var: value}} and submits it.
            plugin = self.muc()
            form = await plugin.get_room_config(slixmpp.JID(cmd["room"]), timeout=timeout)
            for var, value in cmd.get("fields", {}).items():
                form.get_fields()[var]["value"] = value
            await plugin.set_room_config(slixmpp.JID(cmd["room"]), form, timeout=timeout)
            return None
        if op == "muc_message":
            c.send_message(mto=cmd["room"], mbody=cmd["body"], mtype="groupchat")
            return None
        if op == "muc_leave":
            self.muc().leave_muc(slixmpp.JID(cmd["room"]), cmd["nick"])
            return None
        if op == "muc_roster":
            return json.dumps(self.muc().get_roster(slixmpp.JID(cmd["room"])))
        if op == "cut":
            # The network goes away: no </stream:stream>, nothing flushed, no unavailable presence.
            self.reconnecting = True
            gone = asyncio.get_running_loop().create_future()
            c.add_event_handler("disconnected", lambda _e: gone.done() or gone.set_result(True), disposable=True)
            c.abort()
            await asyncio.wait_for(gone, timeout)
            return None
        if op == "reconnect":
            # Resumes the stream-management session when the server still keeps it.
            outcome = asyncio.get_running_loop().create_future()
            self.login_waiters.append(outcome)
            self.reconnecting = False
            self.connect()
            return await asyncio.wait_for(outcome, timeout)
        if op == "sm_state":
            sm = c["xep_0198"]
            return json.dumps(
                {"id": sm.sm_id, "handled": sm.handled, "seq": sm.seq, "unacked": len(sm.unacked_queue)}
            )
        if op == "csi":
            # XEP-0352 through slixmpp's plugin: {"state": "active" | "inactive"}
            plugin = c["xep_0352"]
            if not plugin.enabled:
                raise ValueError("the server offered no urn:xmpp:csi:0 stream feature")
            if cmd["state"] == "active":
                plugin.send_active()
            else:
                plugin.send_inactive()
            return None
        if op == "pep":
            # XEP-0163 through slixmpp's plugins: entity capabilities (XEP-0115) and user nicknames
            # (XEP-0172), whose registration adds the nick+notify interest to the capabilities.
            # {"action": "interest"} or {"action": "publish_nick", "nick": "…"}
            for name in ("xep_0115", "xep_0163", "xep_0172"):
                if name not in c.plugin:
                    c.register_plugin(name)
            if cmd["action"] == "publish_nick":
                return await self.remote(c["xep_0172"].publish_nick(cmd["nick"], timeout=timeout))
            return None
        if op == "avatar":
            # User avatars through slixmpp's plugins: XEP-0084 (whose registration adds the
            # metadata+notify interest to the capabilities) and XEP-0153 (vCard PHOTO).
            # {"action": "interest"}
            # {"action": "publish", "data": base64, "type": MIME, "open": bool}: data, then metadata
            # {"action": "retrieve", "to": JID, "item": id} -> the items reply
            # {"action": "vcard_photo", "data": base64, "type": MIME}: set_avatar on the own vCard
            for name in ("xep_0115", "xep_0163", "xep_0084", "xep_0153"):
                if name not in c.plugin:
                    c.register_plugin(name)
            action = cmd["action"]
            if action == "publish":
                data = base64.b64decode(cmd["data"])
                options = None
                if cmd.get("open"):
                    options = c["xep_0004"].make_form(ftype="submit")
                    options.add_field(
                        var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options"
                    )
                    options.add_field(var="pubsub#access_model", value="open")
                avatar = c["xep_0084"]
                await self.remote(avatar.publish_avatar(data, options=options, timeout=timeout))
                info = {"id": avatar.generate_id(data), "type": cmd["type"], "bytes": len(data)}
                return await self.remote(avatar.publish_avatar_metadata(info, options=options, timeout=timeout))
            if action == "retrieve":
                return await self.remote(c["xep_0084"].retrieve_avatar(cmd["to"], cmd["item"], timeout=timeout))
            if action == "vcard_photo":
                await c["xep_0153"].set_avatar(avatar=base64.b64decode(cmd["data"]), mtype=cmd["type"], timeout=timeout)
                return None
            return None
        if op == "upload":
            # XEP-0363 through slixmpp's plugin at its defaults: it finds the service among the
            # server's disco#items, reads its max-file-size, asks for a slot and PUTs the file
            # with aiohttp. {"path": "/tmp/…"} → the file's GET URL
            if "xep_0363" not in c.plugin:
                c.register_plugin("xep_0363")
            # Debian's slixmpp 1.8.3 hands coroutines to asyncio.wait in
            # xep_0030.get_info_from_domain, which Python 3.11 refuses: the same disco#items
            # and disco#info requests are made here, one after the other, and left in the
            # plugin's cache, where the upload plugin's own discovery reads them.
            disco = c["xep_0030"]
            domain = c.boundjid.domain
            if domain not in disco.domain_infos:
                items = (await disco.get_items(domain, timeout=timeout))["disco_items"]["items"]
                infos = [await disco.get_info(domain, timeout=timeout)]
                for item in items:
                    infos.append(await disco.get_info(item[0], timeout=timeout))
                disco.domain_infos[domain] = infos
            return await c["xep_0363"].upload_file(cmd["path"], timeout=timeout)
        if op == "disconnect":
            # A clean close: unavailable presence is the server's job, then </stream:stream>.
            await c.disconnect(wait=cmd.get("wait", 2.0))
            return None
        raise ValueError("unknown op " + op)

    def muc(self):
        if "xep_0045" not in self.client.plugin:
            self.client.register_plugin("xep_0045")
        return self.client["xep_0045"]

    async def ping(self, to, timeout):
        iq = self.client.Iq()
        iq["type"] = "get"
        iq["to"] = to
        iq.enable("ping")
        return await self.send_iq(iq, timeout)

    async def remote(self, awaitable):
        """Awaits a plugin call that sends an IQ; returns the reply's XML (errors too)."""
        try:
            reply = await awaitable
        except IqError as e:
            reply = e.iq
        return xml_of(reply) if reply is not None else None

    async def handle(self, line):
        try:
            cmd = json.loads(line)
        except json.JSONDecodeError as e:
            emit({"event": "driver_error", "error": "bad command: " + str(e)})
            return
        try:
            result = await self.run_command(cmd)
            emit({"event": "reply", "id": cmd.get("id"), "ok": True, "xml": result})
        except IqTimeout:
            emit({"event": "reply", "id": cmd.get("id"), "ok": False, "error": "timeout"})
        except Exception as e:  # reported to the test, which decides
            emit({"event": "reply", "id": cmd.get("id"), "ok": False, "error": repr(e)})

    async def read_commands(self):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                # The test went away: leave quietly.
                self.client.disconnect(wait=0.5)
                self.done.set()
                return
            if line.strip():
                asyncio.ensure_future(self.handle(line.decode("utf-8")))

    def connect(self):
        self.client.connect(
            (self.args.host, self.args.port),
            use_ssl=self.args.direct_tls,
            force_starttls=not self.args.direct_tls,
        )

    async def main(self):
        self.connect()
        reader = asyncio.ensure_future(self.read_commands())
        await self.done.wait()
        reader.cancel()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--direct-tls", action="store_true", help="XEP-0368 direct TLS instead of STARTTLS")
    p.add_argument("--mech", default="SCRAM-SHA-256", help='the only SASL mechanism to use, or "auto"')
    p.add_argument("--debug", action="store_true", help="slixmpp debug log on stderr")
    p.add_argument("--plugin", action="append", default=[], help="one more slixmpp plugin to register (e.g. xep_0198)")
    return p.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr)
    driver = Driver(args)
    asyncio.get_event_loop().run_until_complete(driver.main())
