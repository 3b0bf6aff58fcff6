"""RFC 5176 Dynamic Authorization on the NVE: the RADIUS side revokes (Disconnect-Request) or
changes (CoA-Request) a MAC's provisioning while it is attached.

Requests are accepted only from the configured RADIUS server, with a valid Request
Authenticator (and Message-Authenticator when present); the session is named by
Calling-Station-Id (the MAC, any common spelling). The NVE answers ACK, or NAK with
Error-Cause 503 (session context not found) when no such MAC is attached here.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyrad import packet
from pyrad.dictionary import Dictionary

from tenet.aaa.provisioning import Provisioning, ProvisioningError, attributes_of, from_attributes

PORT = 3799
SESSION_NOT_FOUND = 503


class DynAuthError(ValueError):
    pass


@dataclass(frozen=True)
class DynRequest:
    kind: str  # disconnect | coa
    mac: str
    provisioning: Provisioning | None  # coa: only the attributes the request carries are set
    packet: packet.CoAPacket


def parse(data: bytes, secret: bytes, dictionary: Dictionary) -> DynRequest:
    try:
        pkt = packet.CoAPacket(packet=data, secret=secret, dict=dictionary)
    except packet.PacketError as e:
        raise DynAuthError(f"malformed: {e}") from None
    if pkt.code not in (packet.DisconnectRequest, packet.CoARequest):
        raise DynAuthError(f"RADIUS code {pkt.code} is not Disconnect- or CoA-Request")
    if not pkt.VerifyCoARequest():
        raise DynAuthError("bad Request Authenticator (wrong shared secret?)")
    if "Message-Authenticator" in pkt and not pkt.verify_message_authenticator():
        raise DynAuthError("bad Message-Authenticator")
    if "Calling-Station-Id" not in pkt:
        raise DynAuthError("no Calling-Station-Id: which session?")
    try:
        attrs = attributes_of(pkt)
    except ProvisioningError as e:
        raise DynAuthError(f"malformed attribute {e}") from None
    raw = str(attrs["Calling-Station-Id"][0]).strip().lower().replace("-", "").replace(":", "").replace(".", "")
    if len(raw) != 12 or any(c not in "0123456789abcdef" for c in raw):
        raise DynAuthError(f"Calling-Station-Id {attrs['Calling-Station-Id'][0]!r} is not a MAC")
    mac = ":".join(raw[i:i + 2] for i in range(0, 12, 2))
    if pkt.code == packet.DisconnectRequest:
        return DynRequest("disconnect", mac, None, pkt)
    try:
        return DynRequest("coa", mac, from_attributes(attrs), pkt)
    except ProvisioningError as e:
        raise DynAuthError(f"CoA-Request is unusable: {e}") from None


def answer(req: DynRequest, ok: bool) -> bytes:
    reply = req.packet.CreateReply()
    if not ok:
        reply.code = packet.DisconnectNAK if req.kind == "disconnect" else packet.CoANAK
        reply["Error-Cause"] = SESSION_NOT_FOUND
    return reply.ReplyPacket()
