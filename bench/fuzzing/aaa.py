"""RADIUS from the server's side of the wire: Access replies the NVE reads (aaa/radius.py
read_reply) and the Disconnect/CoA requests it serves (aaa/dynauth.py parse). Inputs are
re-signed with the shared secret before they are read, as the server would sign them, so
mutations reach the attribute decoding instead of dying at the authenticator check."""
from __future__ import annotations

import hashlib
import hmac
import struct
from random import Random

from pyrad import packet

from fuzzing.mutate import havoc
from fuzzing.run import Target
from tenet.aaa import dynauth
from tenet.aaa.radius import RadiusClient, RadiusError, RadiusReply, read_reply
from tenet.wire import eap

SECRET = b"fuzz-secret"
SERVER = "198.18.0.9"
CLIENT = RadiusClient(SERVER, SECRET.decode())
REQUEST = CLIENT.request("alice", eap.encode(eap.identity_response(1, "alice")), None, "02-00-00-00-00-0A", "tnv1")
REQUEST.id = 7
REQUEST.RequestPacket()  # fixes its authenticator and Message-Authenticator, as sending does
WISPR = 14122
MA = 80


def _ma_at(attrs: bytes) -> int | None:
    """Where the first Message-Authenticator's value starts, if pyrad would verify that one."""
    loc = 0
    while loc + 2 <= len(attrs):
        key, length = attrs[loc], attrs[loc + 1]
        if length < 2:
            return None
        if key == MA:
            return loc + 2 if length == 18 else None
        loc += length
    return None


def sign(raw: bytes, vector: bytes, request_authenticator: bool = False) -> bytes:
    """`raw` with its Message-Authenticator and (Response or Request) Authenticator set as a
    holder of SECRET computes them; the length field is left as the input has it."""
    if len(raw) < 20:
        return raw
    length = int.from_bytes(raw[2:4], "big")
    end = length if 20 <= length <= len(raw) else len(raw)
    p, pad = bytearray(raw[:end]), raw[end:]
    at = _ma_at(bytes(p[20:]))
    if at is not None:
        p[20 + at:20 + at + 16] = bytes(16)
        mac_vector = bytes(16) if request_authenticator else vector
        p[20 + at:20 + at + 16] = hmac.new(SECRET, bytes(p[:4]) + mac_vector + bytes(p[20:]), "md5").digest()
    p[4:20] = hashlib.md5(bytes(p[:4]) + (bytes(16) if request_authenticator else vector) + bytes(p[20:]) + SECRET).digest()
    return bytes(p) + pad


def _attr(t: int, v: bytes) -> bytes:
    return bytes([t, min(255, len(v) + 2)]) + v[:253]


def _wispr(t: int, v: bytes) -> bytes:
    return _attr(26, struct.pack("!I", WISPR) + bytes([t, min(255, len(v) + 2)]) + v)


def _attrs(rng: Random) -> bytes:
    """Attributes of the kinds the NVE reads, with right or wrong sizes and values."""
    u32 = lambda: rng.choice((struct.pack("!I", rng.choice((0, 1, 13, 6, 3600, 2**31, 2**32 - 1))), b"", b"\x01", rng.randbytes(3), rng.randbytes(5)))  # noqa: E731
    pick = [
        lambda: _attr(79, eap.encode(eap.EapPacket(eap.EapCode.SUCCESS, 1, None)) if rng.random() < 0.5 else rng.randbytes(rng.randrange(30))),
        lambda: _attr(24, rng.randbytes(rng.randrange(20))),
        lambda: _attr(64, bytes([rng.choice((0, 1, 0x1F, 0x20))]) + rng.choice((b"\x00\x00\x0d", b"\x00\x00\x01", b"", b"\x0d"))),
        lambda: _attr(65, bytes([rng.choice((0, 1, 0x20))]) + rng.choice((b"\x00\x00\x06", b"\x00\x00\x01", b"", b"\x06"))),
        lambda: _attr(81, bytes([rng.choice((0, 1, 0x1F, 0x20, 0x41))]) + rng.choice((b"red", b"100", b"0", b"99999999999", b"\xff\xfe", "é".encode(), b"", b"\x00", b"1" * 200, "١٢".encode()))),
        lambda: _attr(27, u32()),
        lambda: _wispr(rng.choice((7, 8)), u32()),
        lambda: _attr(11, rng.choice((b"web", b"", b"\xff", b"\x00", b"x" * 250))),
        lambda: _attr(59, rng.choice((bytes(8), bytes([3]) + bytes(7), bytes([9]) + bytes(7), bytes(7), rng.randbytes(8), b""))),
        lambda: _attr(8, rng.choice((bytes([10, 0, 0, 5]), bytes(4), b"\xff" * 4, b"\x0a\x00\x00", rng.randbytes(rng.randrange(8))))),
        lambda: _attr(9, rng.choice((bytes([255, 255, 255, 0]), bytes([255, 0, 255, 0]), bytes(4), b"\xff\xff", rng.randbytes(4)))),
        lambda: _attr(31, rng.choice((b"02-00-00-00-00-0A", b"0200.0000.000a", b"zz", b"\xff" * 12, b"", b"02:00:00:00:00:0a"))),
        lambda: _attr(rng.randrange(256), rng.randbytes(rng.randrange(12))),
        lambda: _attr(26, rng.randbytes(rng.randrange(12))),
        lambda: _attr(MA, bytes(16)),
    ]
    return b"".join(rng.choice(pick)() for _ in range(rng.randrange(8))) + (_attr(MA, bytes(16)) if rng.random() < 0.9 else b"")


def _grammar(codes: tuple[int, ...], ident: int):
    def make(rng: Random) -> bytes:
        body = _attrs(rng)
        return struct.pack("!BBH", rng.choice(codes), ident, 20 + len(body) + rng.choice((0, 0, 0, 0, 1, -1))) + bytes(16) + body
    return make


def _mutate(grammar):
    def mutate(rng: Random, x: bytes, other: bytes) -> bytes:
        if rng.random() < 0.3:
            return grammar(rng)
        return havoc(rng, x, other)
    return mutate


# -- Access replies ---------------------------------------------------------------------------
def _reply(code: int, **attrs: object) -> bytes:
    r = REQUEST.CreateReply()
    r.dict = CLIENT.dict
    r.code = code
    for k, v in attrs.items():
        r[k.replace("_", "-")] = v
    r.add_message_authenticator()
    return r.ReplyPacket()


def _reply_seeds() -> tuple[bytes, ...]:
    success = eap.encode(eap.EapPacket(eap.EapCode.SUCCESS, 2, None))
    return (
        _reply(packet.AccessChallenge, EAP_Message=eap.encode(eap.md5_challenge(2, bytes(16))), State=b"s1"),
        _reply(packet.AccessAccept, EAP_Message=success, Tunnel_Type="VLAN", Tunnel_Medium_Type="IEEE-802",
               Tunnel_Private_Group_Id="red", Session_Timeout=3600, Filter_Id="web", Framed_IP_Address="10.0.0.5",
               Framed_IP_Netmask="255.255.255.0", User_Priority_Table=bytes([3]) + bytes(7)),
        _reply(packet.AccessAccept, EAP_Message=success, Tunnel_Type="VLAN", Tunnel_Medium_Type="IEEE-802",
               Tunnel_Private_Group_Id="100", WISPr_Bandwidth_Max_Up=10**6, WISPr_Bandwidth_Max_Down=10**7),
        _reply(packet.AccessReject, EAP_Message=eap.encode(eap.EapPacket(eap.EapCode.FAILURE, 2, None))),
    )


def _read(x: bytes) -> str:
    """The verdict's kind; the NVE's loop calls read_reply only for a reply whose id is in
    flight, so the id is the request's."""
    raw = sign(x[:1] + bytes([REQUEST.id]) + x[2:], REQUEST.authenticator) if len(x) >= 2 else x
    answer = read_reply(raw, REQUEST, SECRET, CLIENT.dict, SERVER)
    if isinstance(answer, RadiusReply):
        return answer.code
    if isinstance(answer, RadiusError):
        return "RadiusError"
    return "dropped"


# -- dynamic authorization --------------------------------------------------------------------
def _request(code: int, **attrs: object) -> bytes:
    p = packet.CoAPacket(code=code, secret=SECRET, dict=CLIENT.dict)
    p.id = 3
    for k, v in attrs.items():
        p[k.replace("_", "-")] = v
    p.add_message_authenticator()
    return p.RequestPacket()


def _dynauth_seeds() -> tuple[bytes, ...]:
    return (
        _request(packet.DisconnectRequest, Calling_Station_Id="02-00-00-00-00-0A"),
        _request(packet.CoARequest, Calling_Station_Id="02:00:00:00:00:0a", Session_Timeout=60, Filter_Id="web",
                 User_Priority_Table=bytes([5]) + bytes(7), WISPr_Bandwidth_Max_Down=10**6),
        _request(packet.CoARequest, Calling_Station_Id="0200.0000.000a", Tunnel_Type="VLAN", Tunnel_Medium_Type="IEEE-802",
                 Tunnel_Private_Group_Id="blue", Framed_IP_Address="10.0.0.9"),
    )


def _parse(x: bytes) -> str:
    return dynauth.parse(sign(x, bytes(16), request_authenticator=True), SECRET, CLIENT.dict).kind


_replies = _grammar((packet.AccessAccept, packet.AccessChallenge, packet.AccessReject, 0, 255), REQUEST.id)
_requests = _grammar((packet.CoARequest, packet.DisconnectRequest, packet.AccessRequest, 0), 3)
TARGETS = (
    Target("radius", _reply_seeds(), _mutate(_replies), _read, (), fresh=_replies),
    Target("dynauth", _dynauth_seeds(), _mutate(_requests), _parse, (dynauth.DynAuthError,), fresh=_requests),
)
