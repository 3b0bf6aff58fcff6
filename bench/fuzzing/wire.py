"""The packet codecs (src/tenet/wire): frames from the network, anyone's. Each promises
DecodeError and nothing else; what decodes must also survive encode -> decode unchanged."""
from __future__ import annotations

import struct
from ipaddress import IPv4Address
from random import Random
from typing import Any

from fuzzing.mutate import havoc
from fuzzing.run import Target
from tenet.wire import arp, discovery, eap, eapol, hint
from tenet.wire.discovery import AccessTunnel, Message, MsgType, NveType, Qos, Reason, ReasonCode, Tlv, TlvType
from tenet.wire.errors import DecodeError

TES, NVE = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


class RoundTripError(AssertionError):
    """A decoded value that its own encoder refuses or changes: a codec bug, so a crash."""


def _same(decoded: Any, encode: Any, decode: Any) -> None:
    try:
        again = decode(encode(decoded))
    except (ValueError, TypeError) as e:
        raise RoundTripError(f"{decoded!r} decoded but does not encode: {e}") from None
    if again != decoded:
        raise RoundTripError(f"{decoded!r} re-decodes as {again!r}")


def _mutate_bytes(grammar: Any) -> Any:
    """Havoc on an input or on a fresh grammar one, sometimes left whole (a valid-ish input
    with odd field values reaches further than a random one)."""
    def mutate(rng: Random, x: bytes, other: bytes) -> bytes:
        if rng.random() < 0.25:
            x = grammar(rng)
            if rng.random() < 0.5:
                return x
        return havoc(rng, x, other)
    return mutate


def _random_bytes(rng: Random) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 4, 12, 14, 20, 28, 60, rng.randrange(200))))


# -- NVO3 discovery ---------------------------------------------------------------------------
SIZES = {TlvType.VN_NAME: 8, TlvType.NVE_TYPE: 1, TlvType.NVE_CAPABILITY: 4, TlvType.NVE_MAC: 6, TlvType.NVE_IP: 4,
         TlvType.TES_IP: 5, TlvType.VLAN: 2, TlvType.QOS: 9, TlvType.PUBLIC_KEY: 32, TlvType.HOST_UNIQ: 8,
         TlvType.REASON: 5, TlvType.EAP_PAYLOAD: 9, TlvType.AUTH_STATUS: 1, TlvType.SESSION_TIMEOUT: 4,
         TlvType.TES_MAC: 6, TlvType.FILTER_ID: 6, TlvType.HELLO_INTERVAL: 2, TlvType.ACCESS_TUNNEL: 6, TlvType.RATE_UP: 8}
TEXTS = (b"red", b"", b"\xff\xfe", "é🙂".encode(), b"a" * 255, b"a" * 256, b"\0", b"\xed\xa0\x80")


def _tlv_value(rng: Random, t: int) -> bytes:
    size = SIZES.get(t, rng.randrange(12))
    if t in (TlvType.VN_NAME, TlvType.FILTER_ID) and rng.random() < 0.5:
        return rng.choice(TEXTS)
    if t == TlvType.REASON and rng.random() < 0.5:
        return bytes([rng.randrange(12)]) + rng.choice(TEXTS)
    return rng.randbytes(max(0, size + rng.choice((0, 0, 0, -1, 1))))


def _discovery_grammar(rng: Random) -> bytes:
    """A frame with a plausible header and TLVs of plausible sizes but arbitrary values."""
    kinds = list(SIZES) + [0, 20, 21, 0x7FFF, 0xFFFF]
    body = b""
    for _ in range(rng.randrange(8)):
        t = rng.choice(kinds)
        v = _tlv_value(rng, t)
        body += struct.pack("!HH", t, len(v)) + v
    kind = rng.choice((*range(1, 10), 0, 10, 255))
    head = struct.pack("!BBHI", rng.choice((0x10, 0x10, 0x10, 0x20, 0x1F)), kind, 12 + len(body) + rng.choice((0, 0, 0, 1, -1)) & 0xFFFF,
                       rng.randrange(1 << 32)) + rng.randrange(1 << 24).to_bytes(3, "big") + b"\0"
    ethertype = rng.choice((discovery.ETHERTYPE_DISCOVERY, discovery.ETHERTYPE_SESSION, 0x0800))
    return (bytes.fromhex("ffffffffffff020000000a") + b"\0" + struct.pack("!H", ethertype) + head + body).ljust(60, b"\0")


def _discovery_seeds() -> tuple[bytes, ...]:
    msgs = [
        Message(MsgType.DISCOVER, 0, 100, (Tlv(TlvType.VN_NAME, "red"), Tlv(TlvType.HOST_UNIQ, b"\x01\x02"))),
        Message(MsgType.OFFER, 0, 100, (Tlv(TlvType.NVE_TYPE, NveType.HYPERVISOR), Tlv(TlvType.NVE_CAPABILITY, 100),
                                        Tlv(TlvType.NVE_MAC, NVE), Tlv(TlvType.NVE_IP, IPv4Address("198.18.0.1")))),
        Message(MsgType.REQUEST, 0, 100, (Tlv(TlvType.NVE_MAC, NVE), Tlv(TlvType.PUBLIC_KEY, bytes(32)))),
        Message(MsgType.CONFIRM, 7, 100, (Tlv(TlvType.HELLO_INTERVAL, 5), Tlv(TlvType.TES_MAC, TES))),
        Message(MsgType.EAP, 7, 100, (Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.md5_challenge(1, bytes(16)))),)),
        Message(MsgType.AUTH_RESULT, 7, 100, (
            Tlv(TlvType.AUTH_STATUS, 1), Tlv(TlvType.TES_IP, "10.0.0.5/24"), Tlv(TlvType.VLAN, 100),
            Tlv(TlvType.QOS, Qos(10**9, 3)), Tlv(TlvType.SESSION_TIMEOUT, 3600), Tlv(TlvType.FILTER_ID, "web"),
            Tlv(TlvType.ACCESS_TUNNEL, AccessTunnel(9, 4790)), Tlv(TlvType.RATE_UP, 10**8))),
        Message(MsgType.HELLO, 7, 100), Message(MsgType.HELLO_ACK, 7, 100),
        Message(MsgType.TERMINATE, 7, 100, (Tlv(TlvType.REASON, Reason(ReasonCode.ADMIN, "bye")), Tlv(99, b"raw"))),
    ]
    return tuple(discovery.frame(NVE if m.type == MsgType.OFFER else "ff:ff:ff:ff:ff:ff", TES, m) for m in msgs)


def _discovery(x: bytes) -> None:
    _, _, _, msg = discovery.unframe(x)
    _same(msg, discovery.encode, discovery.decode)


# -- EAP and EAPOL ----------------------------------------------------------------------------
def _eap_grammar(rng: Random) -> bytes:
    code = rng.choice((1, 2, 3, 4, 0, 5, 255))
    data = rng.randbytes(rng.choice((0, 1, 16, 17, rng.randrange(40))))
    if rng.random() < 0.5:  # an MD5 value-size byte that may lie
        data = bytes([rng.choice((16, 0, 255, len(data)))]) + data
    typ = rng.choice((1, 2, 3, 4, 0, 13, 25, 255))
    body = bytes([typ]) + data if code in (1, 2) or rng.random() < 0.2 else b""
    length = 4 + len(body) + rng.choice((0, 0, 0, 1, -1, 100))
    return bytes([code, rng.randrange(256)]) + (length & 0xFFFF).to_bytes(2, "big") + body


def _eap_seeds() -> tuple[bytes, ...]:
    return tuple(eap.encode(p) for p in (
        eap.identity_response(1, "alice"), eap.md5_challenge(2, bytes(range(16)), b"nve"),
        eap.md5_response(2, b"secret", bytes(range(16)), b"alice"), eap.nak(3),
        eap.EapPacket(eap.EapCode.SUCCESS, 4, None), eap.EapPacket(eap.EapCode.FAILURE, 4, None),
        eap.EapPacket(eap.EapCode.REQUEST, 5, 25, b"\x20"), eap.EapPacket(eap.EapCode.REQUEST, 6, eap.TYPE_NOTIFICATION, b"hi")))


def _eap(x: bytes) -> None:
    p = eap.decode(x)
    _same(p, eap.encode, eap.decode)
    eap.method_of(x)
    if p.type == eap.TYPE_MD5:
        eap.parse_md5(p)


def _eapol_grammar(rng: Random) -> bytes:
    kind = rng.choice((0, 0, 1, 2, 3, 5, 8, 9, 255))
    body = _eap_grammar(rng) if kind == 0 else rng.randbytes(rng.choice((0, 0, 4, rng.randrange(30))))
    head = struct.pack("!BBH", rng.choice((1, 2, 3, 0, 4)), kind, len(body) + rng.choice((0, 0, 0, 1, -1)) & 0xFFFF)
    ethertype = rng.choice((eapol.ETHERTYPE, eapol.ETHERTYPE, 0x88B5))
    return (bytes.fromhex("0180c2000003020000000a") + b"\0" + struct.pack("!H", ethertype) + head + body).ljust(60, b"\0")


def _eapol_seeds() -> tuple[bytes, ...]:
    frames = [eapol.Eapol(eapol.EapolType.START), eapol.Eapol(eapol.EapolType.LOGOFF),
              eapol.Eapol(eapol.EapolType.KEY, b"\x02" + bytes(94), 3)]
    frames += [eapol.Eapol(eapol.EapolType.EAP, e) for e in _eap_seeds()]
    return tuple(eapol.frame(eapol.PAE_GROUP, TES, f) for f in frames)


def _eapol(x: bytes) -> None:
    _, _, f = eapol.unframe(x)
    _same(f, eapol.encode, eapol.decode)
    if f.type is eapol.EapolType.EAP:
        f.eap


# -- ARP --------------------------------------------------------------------------------------
def _arp_grammar(rng: Random) -> bytes:
    head = rng.choice(((1, 0x0800, 6, 4),) * 4 + ((6, 0x0800, 6, 4), (1, 0x86DD, 6, 16), (1, 0x0800, 8, 4)))
    body = struct.pack("!HHBBH", *head, rng.choice((1, 2, 3, 4, 0, 0xFFFF)))
    body += rng.randbytes(6) + rng.choice((bytes(4), b"\xff" * 4, rng.randbytes(4))) + rng.randbytes(6)
    return (body + rng.choice((bytes(4), rng.randbytes(4))) + rng.randbytes(rng.choice((0, 0, 18))))[:rng.choice((28, 28, 60, 27))]


def _arp_seeds() -> tuple[bytes, ...]:
    ip1, ip2 = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")
    req = arp.Arp(arp.REQUEST, TES, ip1, "00:00:00:00:00:00", ip2)
    return (arp.encode(req), arp.encode(arp.proxy_reply(req, NVE)), arp.gratuitous(TES, ip1)[14:],  # type: ignore[arg-type]
            arp.rarp_announce(TES)[14:], arp.frame(NVE, TES, req)[14:])


def _arp(x: bytes) -> None:
    a = arp.decode(x)
    _same(a, arp.encode, arp.decode)
    arp.proxy_reply(a, NVE)


# -- peer hints -------------------------------------------------------------------------------
def _hint_grammar(rng: Random) -> bytes:
    count = rng.choice((1, 1, 2, 3, 64, 0, 65, 255))
    odd = rng.random() < 0.5  # else every entry is well formed, so the whole datagram may decode
    body = b""
    for _ in range(min(count, 70) + (rng.choice((0, 1, -1)) if odd else 0)):
        mac = lambda: bytes([rng.randrange(256) & 0xFE]) + rng.randbytes(5) if not odd else rng.choice(  # noqa: E731
            (bytes.fromhex("020000000001"), b"\xff" * 6, bytes(6), b"\x01" + bytes(5), rng.randbytes(6)))
        kind = rng.choice((1, 2, 0, 3)) if odd else rng.choice((1, 2))
        vnid = rng.choice((0, 1, 0xFFFFFF, rng.randrange(1 << 24))) if odd else rng.randrange(1, 1 << 24)
        body += bytes([kind]) + vnid.to_bytes(3, "big") + mac() + mac()
    return struct.pack("!BBI", rng.choice((1, 1, 1, 0, 2)), count, rng.randrange(1 << 32)) + body


def _hint_seeds() -> tuple[bytes, ...]:
    e1 = hint.HintEntry(hint.HintKind.ANNOUNCE, 100, TES, "02:00:00:00:01:0a")
    e2 = hint.HintEntry(hint.HintKind.WITHDRAW, 0xFFFFFF, NVE, "02:00:00:00:01:0b")
    return (hint.encode(hint.Hint(1, (e1,))), hint.encode(hint.Hint(2**32 - 1, (e1, e2))),
            hint.encode(hint.Hint(5, (e2,) * hint.HINT_MAX_ENTRIES)))


def _hint(x: bytes) -> None:
    _same(hint.decode(x), hint.encode, hint.decode)


def _target(name: str, seeds: tuple[bytes, ...], grammar: Any, run: Any) -> Target:
    return Target(name, seeds, _mutate_bytes(grammar), run, (DecodeError,),
                  fresh=lambda rng: _random_bytes(rng) if rng.random() < 0.5 else grammar(rng))


TARGETS = (
    _target("discovery", _discovery_seeds(), _discovery_grammar, _discovery),
    _target("eapol", _eapol_seeds(), _eapol_grammar, _eapol),
    _target("eap", _eap_seeds(), _eap_grammar, _eap),
    _target("arp", _arp_seeds(), _arp_grammar, _arp),
    _target("hint", _hint_seeds(), _hint_grammar, _hint),
)
