#!/usr/bin/python3
"""Proving a Switchboard client licence from Python, with slixmpp.

The protocol is in docs/licensing-protocol.md. This client logs in, proves its
licence before SASL, prints what happened and disconnects:

    python3 docs/examples/licence_proof.py --jid alice@localhost --password-file alice.password \\
        --key example-chat-linux.key --client-id com.example.chat --key-id linux-2026 --version 5.0.1 --insecure

(--insecure accepts the self-signed certificate of a test server such as `npm start`'s.)
Exit status: 0 logged in, 3 refused, 1 anything else.

Needs slixmpp and cryptography (Debian: python3-slixmpp, python3-cryptography).

Python's ssl module cannot export TLS keying material, so it cannot compute the
tls-exporter binding (RFC 9266) the server offers first on TLS 1.3. It binds to
tls-server-end-point (RFC 5929), which the server offers too and Python can
compute, and says so in the proof's channel-binding attribute.
"""

import argparse
import asyncio
import base64
import hashlib
import ssl
import sys

import slixmpp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from slixmpp.stanza import StreamFeatures
from slixmpp.xmlstream import ElementBase, register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS = "urn:switchboard:client-licence:0"


class LicenceFeature(ElementBase):
    """The <licence/> stream feature, so that slixmpp lists it among the features."""

    name = "licence"
    namespace = NS
    plugin_attrib = "licence"
    interfaces = {"mode", "cutoff"}


def server_end_point(cert_der):
    """RFC 5929 §4.1: the certificate hashed with its signature's hash (SHA-256 for MD5, SHA-1,
    and for algorithms without a hash of their own such as Ed25519)."""
    try:
        algo = x509.load_der_x509_certificate(cert_der).signature_hash_algorithm
        name = algo.name if algo is not None else None
    except UnsupportedAlgorithm:
        # cryptography before 40 (Debian 12 has 38) does not read RSASSA-PSS signatures.
        name = pss_hash_name(cert_der)
    return hashlib.new(name if name in ("sha224", "sha384", "sha512") else "sha256", cert_der).digest()


HASH_OIDS = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
             "2.16.840.1.101.3.4.2.3": "sha512", "2.16.840.1.101.3.4.2.4": "sha224"}


def der_items(data):
    """The (tag, contents) of each DER element in data, in order."""
    at = 0
    while at < len(data):
        tag, length = data[at], data[at + 1]
        at += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[at:at + size], "big")
            at += size
        yield tag, data[at:at + length]
        at += length


def oid_text(body):
    parts = [body[0] // 40, body[0] % 40]
    value = 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def pss_hash_name(cert_der):
    """The hash an RSASSA-PSS signature's parameters name (RFC 4055: SHA-1 when absent)."""
    [(_, certificate)] = der_items(cert_der)
    _, (_, signature_algorithm), _ = der_items(certificate)
    _oid, *params = der_items(signature_algorithm)
    for tag, field in der_items(params[0][1]) if params else ():
        if tag == 0xA0:  # [0] hashAlgorithm
            [(_, hash_algorithm)] = der_items(field)
            (_, oid), *_ = der_items(hash_algorithm)
            return HASH_OIDS.get(oid_text(oid), "sha1")
    return "sha1"


def signed_bytes(domain, stream_id, nonce, client_id, version, platform, key_id, binding_type, binding):
    """The canonical string: nine lines joined by "\\n", UTF-8, no trailing newline."""
    last = f"{binding_type}:{base64.b64encode(binding).decode()}" if binding_type else "none:"
    lines = ["switchboard-client-licence:0", domain, stream_id, nonce, client_id, version, platform, key_id, last]
    return "\n".join(lines).encode("utf-8")


class LicensedClient(slixmpp.ClientXMPP):
    def __init__(self, jid, password, licence):
        super().__init__(jid, password)
        self.licence = licence  # client_id, version, platform, key_id, private_key
        self.answer = None
        self.outcome = "not connected"
        register_stanza_plugin(StreamFeatures, LicenceFeature)
        # Features run in order: STARTTLS is 0, SASL 100, so 50 is after TLS and before SASL.
        self.register_feature("licence", self.prove, restart=False, order=50)
        self.register_handler(Callback("licence answer", MatchXPath(f"{{{NS}}}success"), self.on_success))
        self.add_event_handler("stream_error", self.on_stream_error)

    async def prove(self, features):
        offer = features["licence"].xml
        nonce = offer.findtext(f"{{{NS}}}nonce")
        offered = [el.get("type") for el in offer.findall(f"{{{NS}}}channel-binding")]
        binding_type = None
        binding = b""
        if "tls-server-end-point" in offered:
            binding_type = "tls-server-end-point"
            tls = self.transport.get_extra_info("ssl_object")
            binding = server_end_point(tls.getpeercert(binary_form=True))
        elif offered:
            raise RuntimeError(f"cannot compute any offered channel binding: {offered}")
        lic = self.licence
        data = signed_bytes(self.boundjid.domain, self.stream_id, nonce, lic["client_id"], lic["version"],
                            lic["platform"], lic["key_id"], binding_type, binding)
        signature = base64.b64encode(lic["private_key"].sign(data)).decode()
        self.answer = asyncio.get_running_loop().create_future()
        named = f" channel-binding='{binding_type}'" if binding_type else ""
        self.send_raw(f"<proof xmlns='{NS}' client-id='{lic['client_id']}' version='{lic['version']}' "
                      f"platform='{lic['platform']}' key-id='{lic['key_id']}'{named}>{signature}</proof>")
        try:
            await self.answer  # <success/>, or a stream error that cancels the wait
        except asyncio.CancelledError:
            return True  # refused: the server closes the stream; stop negotiating
        return False  # go on with the next feature: SASL

    def on_success(self, stanza):
        recommended = stanza.xml.find(f"{{{NS}}}recommended")
        if recommended is not None:
            print(f"recommended version: {recommended.get('version')} {recommended.get('url') or ''}".rstrip())
        print("licence accepted")
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(True)

    def on_stream_error(self, error):
        app = [c for c in error.xml if c.tag.startswith(f"{{{NS}}}")]
        if app:
            cond = app[0].tag.split("}")[1]
            details = " ".join(f"{k}={v}" for k, v in sorted(app[0].attrib.items()))
            print(f"refused: {cond} {details} ({error['text']})".replace("  ", " "))
        else:
            print(f"stream error: {error['condition']} ({error['text']})")
        self.outcome = "refused" if app else "stream error"
        if self.answer is not None and not self.answer.done():
            self.answer.cancel()  # the stream ends: no <success/> will come


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jid", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--key", required=True, help="the app's Ed25519 private key (PEM, from switchboard keygen)")
    p.add_argument("--client-id", required=True)
    p.add_argument("--key-id", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--platform", default="linux")
    p.add_argument("--host", help="server address (default: from the JID's domain)")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--insecure", action="store_true", help="accept a self-signed certificate (test servers only)")
    args = p.parse_args()

    with open(args.key, "rb") as f:
        private_key = load_pem_private_key(f.read(), password=None)
    with open(args.password_file) as f:
        password = f.read().rstrip("\n")
    licence = {"client_id": args.client_id, "version": args.version, "platform": args.platform,
               "key_id": args.key_id, "private_key": private_key}

    client = LicensedClient(args.jid, password, licence)
    if args.insecure:
        client.ssl_context.check_hostname = False
        client.ssl_context.verify_mode = ssl.CERT_NONE

    done = asyncio.Event()

    def session_start(_event):
        client.outcome = "ok"
        print(f"session started as {client.boundjid}")
        client.disconnect()

    def failed_auth(_event):
        client.outcome = "authentication failed"
        print("authentication failed")
        client.disconnect()

    client.add_event_handler("session_start", session_start)
    client.add_event_handler("failed_all_auth", failed_auth)
    client.add_event_handler("disconnected", lambda _e: done.set())
    client.add_event_handler("connection_failed", lambda e: (print(f"connection failed: {e}"), done.set()))
    address = (args.host, args.port) if args.host else None
    client.connect(address, force_starttls=True)
    loop = asyncio.get_event_loop()
    loop.run_until_complete(done.wait())
    # slixmpp leaves its stanza filter task running: end it before the program does.
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    sys.exit({"ok": 0, "refused": 3}.get(client.outcome, 1))


if __name__ == "__main__":
    main()
