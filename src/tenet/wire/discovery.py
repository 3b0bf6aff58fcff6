"""NVO3 discovery and session messages (docs/protocol.md): a strict, declarative codec.

A 12-byte header, then TLVs. Known TLVs decode to typed values through a registry; unknown
ones are kept as raw bytes and re-encoded unchanged. Every malformed input raises
DecodeError with the offset; nothing else ever escapes decode().
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Interface

from tenet.wire.errors import DecodeError

VERSION = 1
HEADER = 12
ETHERTYPE_DISCOVERY = 0x88B5  # IEEE 802 Local Experimental EtherType 1
ETHERTYPE_SESSION = 0x88B6  # IEEE 802 Local Experimental EtherType 2
SERVER_PORT = 6767  # L3 variant, DHCP-style: NVEs listen here
CLIENT_PORT = 6768  # ... and TESs here
HINT_PORT = 6769  # NVE to NVE on one physical network: peer hints (wire/hint.py)
ACCESS_TUNNEL_PORT = 4790  # L3 variant: VXLAN between TES and NVE (not 4789: the VN's VNIs live there)
BROADCAST = "ff:ff:ff:ff:ff:ff"
MIN_FRAME = 60


class MsgType(IntEnum):
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    CONFIRM = 4
    EAP = 5
    AUTH_RESULT = 6
    HELLO = 7
    HELLO_ACK = 8
    TERMINATE = 9


DISCOVERY_PHASE = {MsgType.DISCOVER, MsgType.OFFER, MsgType.REQUEST, MsgType.CONFIRM}


class TlvType(IntEnum):
    VN_NAME = 1
    NVE_TYPE = 2
    NVE_CAPABILITY = 3
    NVE_MAC = 4
    NVE_IP = 5
    TES_IP = 6
    VLAN = 7
    QOS = 8
    PUBLIC_KEY = 9
    HOST_UNIQ = 10
    REASON = 11
    EAP_PAYLOAD = 12
    AUTH_STATUS = 13
    SESSION_TIMEOUT = 14
    TES_MAC = 15
    FILTER_ID = 16
    HELLO_INTERVAL = 17
    ACCESS_TUNNEL = 18
    RATE_UP = 19  # u64 bit/s the TES may send (QOS's rate is toward it): a TLV of its own, see docs


class NveType(IntEnum):
    HYPERVISOR = 1
    ACCESS_SWITCH = 2
    ROUTER = 3


class ReasonCode(IntEnum):
    NONE = 0
    AUTH_FAILED = 1
    KEEPALIVE_TIMEOUT = 2
    ADMIN = 3
    SHUTDOWN = 4
    UNKNOWN_SESSION = 5
    VN_UNAVAILABLE = 6
    REAUTH_FAILED = 7
    PORT_GONE = 8  # the TES's port left the NVE (its VM migrated away): never sent, it cannot arrive


@dataclass(frozen=True)
class Qos:
    rate_bps: int  # toward the TES (WISPr-Bandwidth-Max-Down); 0 = no limit
    cos: int  # 0..7


@dataclass(frozen=True)
class AccessTunnel:
    """L3 transport: the VXLAN tunnel that carries the TES's frames to its NVE after Accept."""

    vni: int  # 1..2^24-1, allocated per session by the NVE (not the VN-ID: the VN's is in use)
    port: int  # UDP destination port of the tunnel


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    text: str = ""


@dataclass(frozen=True)
class Tlv:
    type: int
    value: object  # typed for known TLVs, bytes for unknown ones


@dataclass(frozen=True)
class Message:
    type: MsgType
    session_id: int = 0
    vnid: int = 0
    tlvs: tuple[Tlv, ...] = ()

    def get(self, t: TlvType) -> object | None:
        return next((x.value for x in self.tlvs if x.type == t), None)

    def all(self, t: TlvType) -> list[object]:
        return [x.value for x in self.tlvs if x.type == t]


# -- value codecs: (encode(value) -> bytes, decode(bytes) -> value, raising ValueError) -------
def _text(lo: int, hi: int) -> tuple[Callable, Callable]:
    def enc(v: object) -> bytes:
        b = str(v).encode()
        if not lo <= len(b) <= hi:
            raise ValueError(f"length {len(b)} not in {lo}..{hi}")
        return b

    def dec(b: bytes) -> str:
        if not lo <= len(b) <= hi:
            raise ValueError(f"length {len(b)} not in {lo}..{hi}")
        return b.decode()

    return enc, dec


def _uint(size: int, lo: int = 0, hi: int | None = None, kind: type = int) -> tuple[Callable, Callable]:
    top = hi if hi is not None else (1 << (8 * size)) - 1

    def enc(v: object) -> bytes:
        n = int(v)  # type: ignore[call-overload]
        if not lo <= n <= top:
            raise ValueError(f"{n} not in {lo}..{top}")
        return n.to_bytes(size, "big")

    def dec(b: bytes) -> object:
        if len(b) != size:
            raise ValueError(f"length {len(b)}, expected {size}")
        n = int.from_bytes(b, "big")
        if not lo <= n <= top:
            raise ValueError(f"{n} not in {lo}..{top}")
        return kind(n)

    return enc, dec


def _opaque(lo: int = 0, hi: int = 65535) -> tuple[Callable, Callable]:
    def check(b: bytes) -> bytes:
        if not lo <= len(b) <= hi:
            raise ValueError(f"length {len(b)} not in {lo}..{hi}")
        return bytes(b)

    return (lambda v: check(bytes(v))), check  # type: ignore[arg-type]


def _mac_enc(v: object) -> bytes:
    b = bytes.fromhex(str(v).replace(":", "").replace("-", ""))
    if len(b) != 6:
        raise ValueError(f"not a MAC: {v!r}")
    return b


def _mac_dec(b: bytes) -> str:
    if len(b) != 6:
        raise ValueError(f"length {len(b)}, expected 6")
    return b.hex(":")


def _ip_enc(v: object) -> bytes:
    return IPv4Address(str(v)).packed


def _ip_dec(b: bytes) -> IPv4Address:
    if len(b) != 4:
        raise ValueError(f"length {len(b)}, expected 4")
    return IPv4Address(b)


def _iface_enc(v: object) -> bytes:
    i = IPv4Interface(str(v))
    return i.ip.packed + bytes([i.network.prefixlen])


def _iface_dec(b: bytes) -> IPv4Interface:
    if len(b) != 5 or b[4] > 32:
        raise ValueError("expected 4-byte address and prefix length 0..32")
    return IPv4Interface(f"{IPv4Address(b[:4])}/{b[4]}")


def _qos_enc(v: object) -> bytes:
    q = v if isinstance(v, Qos) else Qos(*v)  # type: ignore[misc]
    if not 0 <= q.cos <= 7 or not 0 <= q.rate_bps < 2**64:
        raise ValueError(f"bad QoS {q}")
    return struct.pack("!QB", q.rate_bps, q.cos)


def _qos_dec(b: bytes) -> Qos:
    if len(b) != 9:
        raise ValueError(f"length {len(b)}, expected 9")
    rate, cos = struct.unpack("!QB", b)
    if cos > 7:
        raise ValueError(f"class of service {cos} > 7")
    return Qos(rate, cos)


def _tunnel_enc(v: object) -> bytes:
    t = v if isinstance(v, AccessTunnel) else AccessTunnel(*v)  # type: ignore[misc]
    if not 1 <= t.vni < 2**24 or not 1 <= t.port < 2**16:
        raise ValueError(f"bad access tunnel {t}")
    return struct.pack("!IH", t.vni, t.port)


def _tunnel_dec(b: bytes) -> AccessTunnel:
    if len(b) != 6:
        raise ValueError(f"length {len(b)}, expected 6")
    vni, port = struct.unpack("!IH", b)
    if not 1 <= vni < 2**24 or not port:
        raise ValueError(f"VNI {vni} or port {port} out of range")
    return AccessTunnel(vni, port)


def _reason_enc(v: object) -> bytes:
    r = v if isinstance(v, Reason) else Reason(ReasonCode(v))  # type: ignore[arg-type]
    return bytes([int(r.code)]) + r.text.encode()


def _reason_dec(b: bytes) -> Reason:
    if not b:
        raise ValueError("empty reason")
    return Reason(ReasonCode(b[0]), b[1:].decode())


REGISTRY: dict[int, tuple[Callable, Callable]] = {
    TlvType.VN_NAME: _text(1, 255),
    TlvType.NVE_TYPE: _uint(1, 1, 3, NveType),
    TlvType.NVE_CAPABILITY: _uint(4),
    TlvType.NVE_MAC: (_mac_enc, _mac_dec),
    TlvType.NVE_IP: (_ip_enc, _ip_dec),
    TlvType.TES_IP: (_iface_enc, _iface_dec),
    TlvType.VLAN: _uint(2, 1, 4094),
    TlvType.QOS: (_qos_enc, _qos_dec),
    TlvType.PUBLIC_KEY: _opaque(),
    TlvType.HOST_UNIQ: _opaque(1, 64),
    TlvType.REASON: (_reason_enc, _reason_dec),
    TlvType.EAP_PAYLOAD: _opaque(4),
    TlvType.AUTH_STATUS: _uint(1, 0, 1),
    TlvType.SESSION_TIMEOUT: _uint(4),
    TlvType.TES_MAC: (_mac_enc, _mac_dec),
    TlvType.FILTER_ID: _text(1, 255),
    TlvType.HELLO_INTERVAL: _uint(2, 1),
    TlvType.ACCESS_TUNNEL: (_tunnel_enc, _tunnel_dec),
    TlvType.RATE_UP: _uint(8, 1),
}


def encode(msg: Message) -> bytes:
    if not 0 <= msg.session_id < 2**32:
        raise ValueError(f"session_id {msg.session_id} is not a u32")
    if not 0 <= msg.vnid < 2**24:
        raise ValueError(f"vnid {msg.vnid} is not 24-bit")
    body = b""
    for t in msg.tlvs:
        codec = REGISTRY.get(t.type)
        try:
            value = codec[0](t.value) if codec else bytes(t.value)  # type: ignore[call-overload]
        except (ValueError, TypeError) as e:
            name = TlvType(t.type).name if codec else str(t.type)
            raise ValueError(f"TLV {name}: {e}") from None
        if len(value) > 0xFFFF:
            raise ValueError(f"TLV {t.type}: value too long")
        body += struct.pack("!HH", int(t.type), len(value)) + value
    length = HEADER + len(body)
    if length > 0xFFFF:
        raise ValueError("message too long")
    head = struct.pack("!BBHI", VERSION << 4, int(msg.type), length, msg.session_id)
    return head + msg.vnid.to_bytes(3, "big") + b"\0" + body


def decode(data: bytes) -> Message:
    if len(data) < HEADER:
        raise DecodeError(0, f"{len(data)} bytes is shorter than the {HEADER}-byte header")
    ver = data[0] >> 4
    if ver != VERSION:
        raise DecodeError(0, f"version {ver}, expected {VERSION}")
    try:
        kind = MsgType(data[1])
    except ValueError:
        raise DecodeError(1, f"unknown message type {data[1]}") from None
    length = int.from_bytes(data[2:4], "big")
    if not HEADER <= length <= len(data):
        raise DecodeError(2, f"length {length} outside {HEADER}..{len(data)}")
    session = int.from_bytes(data[4:8], "big")
    vnid = int.from_bytes(data[8:11], "big")
    tlvs = []
    off = HEADER
    while off < length:
        if off + 4 > length:
            raise DecodeError(off, "truncated TLV header")
        t, n = struct.unpack_from("!HH", data, off)
        if off + 4 + n > length:
            raise DecodeError(off, f"TLV {t} of length {n} overruns the message")
        raw = bytes(data[off + 4 : off + 4 + n])
        codec = REGISTRY.get(t)
        if codec is None:
            tlvs.append(Tlv(t, raw))
        else:
            try:
                tlvs.append(Tlv(TlvType(t), codec[1](raw)))
            except (ValueError, UnicodeDecodeError) as e:
                raise DecodeError(off + 4, f"TLV {TlvType(t).name}: {e}") from None
        off += 4 + n
    return Message(kind, session, vnid, tuple(tlvs))


def ethertype_for(kind: MsgType) -> int:
    return ETHERTYPE_DISCOVERY if kind in DISCOVERY_PHASE else ETHERTYPE_SESSION


def frame(dst: str, src: str, msg: Message) -> bytes:
    """An Ethernet frame carrying `msg`, padded to the 60-byte minimum."""
    f = _mac_enc(dst) + _mac_enc(src) + struct.pack("!H", ethertype_for(msg.type)) + encode(msg)
    return f.ljust(MIN_FRAME, b"\0")


def unframe(data: bytes) -> tuple[str, str, int, Message]:
    if len(data) < 14:
        raise DecodeError(0, "shorter than an Ethernet header")
    ethertype = int.from_bytes(data[12:14], "big")
    if ethertype not in (ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION):
        raise DecodeError(12, f"ethertype {ethertype:#06x} is not tenet's")
    try:
        msg = decode(data[14:])
    except DecodeError as e:
        raise DecodeError(e.offset + 14, e.reason) from None
    if ethertype_for(msg.type) != ethertype:
        raise DecodeError(15, f"{msg.type.name} must not travel with ethertype {ethertype:#06x}")
    return _mac_dec(data[:6]), _mac_dec(data[6:12]), ethertype, msg
