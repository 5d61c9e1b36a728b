"""Two aioxmpp clients (Debian python3-aioxmpp) at their defaults: log in, exchange a chat
message, fetch the roster and the server's disco#info. Prints one JSON line of results.

usage: aioxmpp_chat.py HOST PORT starttls|tls CA_FILE DOMAIN USER PASSWORD PEER PEER_PASSWORD
"""
import asyncio
import json
import sys

import OpenSSL.SSL
import aioxmpp
import aioxmpp.connector
import aioxmpp.disco
import aioxmpp.roster

host, port, mode, ca_file, domain, user, password, peer, peer_password = sys.argv[1:10]


def security(pw):
    # The defaults (certificate verified, TLS required), with the server's own CA trusted, as
    # a user of a self-signed server does.
    layer = aioxmpp.make_security_layer(pw)

    def context():
        ctx = layer.ssl_context_factory()
        ctx.load_verify_locations(ca_file)
        return ctx

    return layer._replace(ssl_context_factory=context)


def client(name, pw):
    connector = (
        aioxmpp.connector.STARTTLSConnector() if mode == "starttls" else aioxmpp.connector.XMPPOverTLSConnector()
    )
    return aioxmpp.PresenceManagedClient(
        aioxmpp.JID.fromstr(f"{name}@{domain}"),
        security(pw),
        override_peer=[(host, int(port), connector)],
    )


async def main():
    result = {}
    received = asyncio.get_event_loop().create_future()
    sender, receiver = client(user, password), client(peer, peer_password)

    def on_message(msg):
        if msg.body and not received.done():
            received.set_result(msg.body.any())

    dispatcher = receiver.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
    dispatcher.register_callback(aioxmpp.MessageType.CHAT, None, on_message)
    async with receiver.connected():
        async with sender.connected() as stream:
            result["jid"] = str(sender.local_jid)
            msg = aioxmpp.Message(to=aioxmpp.JID.fromstr(f"{peer}@{domain}"), type_=aioxmpp.MessageType.CHAT)
            msg.body[None] = f"hello from aioxmpp over {mode}"
            await stream.send(msg)
            result["received"] = await asyncio.wait_for(received, 10)
            info = await sender.summon(aioxmpp.disco.DiscoClient).query_info(aioxmpp.JID.fromstr(domain))
            result["features"] = sorted(info.features)
            roster = sender.summon(aioxmpp.roster.RosterClient)
            result["roster"] = len(roster.items)
    print(json.dumps(result))


asyncio.run(main())
