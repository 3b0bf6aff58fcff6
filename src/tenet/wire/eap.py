"""EAP (RFC 3748) packets and EAPOL (802.1X) frames: strict, pure codecs."""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum

from tenet.wire.errors import DecodeError

TYPE_IDENTITY = 1
TYPE_NOTIFICATION = 2
TYPE_NAK = 3
TYPE_MD5 = 4
# the IANA names of common authentication methods (RFC 3748 §5; the IANA EAP registry)
METHODS = {4: "md5", 5: "otp", 6: "gtc", 13: "tls", 17: "leap", 18: "sim", 21: "ttls", 23: "aka", 25: "peap",
           26: "mschapv2", 43: "fast", 47: "psk", 50: "aka-prime", 52: "pwd", 55: "teap"}
ETHERTYPE_EAPOL = 0x888E


class EapCode(IntEnum):
    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


@dataclass(frozen=True)
class EapPacket:
    code: EapCode
    identifier: int
    type: int | None  # None for Success/Failure
    data: bytes = b""


def encode(p: EapPacket) -> bytes:
    if not 0 <= p.identifier <= 255:
        raise ValueError(f"identifier {p.identifier} is not a byte")
    if p.code in (EapCode.SUCCESS, EapCode.FAILURE):
        if p.type is not None or p.data:
            raise ValueError("EAP Success/Failure carry no type or data")
        return struct.pack("!BBH", p.code, p.identifier, 4)
    if p.type is None or not 1 <= p.type <= 255:
        raise ValueError("EAP Request/Response need a type 1..255")
    return struct.pack("!BBHB", p.code, p.identifier, 5 + len(p.data), p.type) + p.data


def decode(b: bytes) -> EapPacket:
    if len(b) < 4:
        raise DecodeError(0, "EAP packet shorter than 4 bytes")
    try:
        code = EapCode(b[0])
    except ValueError:
        raise DecodeError(0, f"unknown EAP code {b[0]}") from None
    length = int.from_bytes(b[2:4], "big")
    if not 4 <= length <= len(b):
        raise DecodeError(2, f"EAP length {length} outside 4..{len(b)}")
    if code in (EapCode.SUCCESS, EapCode.FAILURE):
        if length != 4:
            raise DecodeError(2, "EAP Success/Failure must be 4 bytes")
        return EapPacket(code, b[1], None)
    if length < 5:
        raise DecodeError(4, "EAP Request/Response without a type")
    if b[4] == 0:
        raise DecodeError(4, "EAP type 0 is reserved")
    return EapPacket(code, b[1], b[4], bytes(b[5:length]))


def md5_challenge(identifier: int, challenge: bytes, name: bytes = b"") -> EapPacket:
    return EapPacket(EapCode.REQUEST, identifier, TYPE_MD5, bytes([len(challenge)]) + challenge + name)


def parse_md5(p: EapPacket) -> tuple[bytes, bytes]:
    """(value, name) of an MD5-Challenge request or response."""
    if p.type != TYPE_MD5 or not p.data or p.data[0] + 1 > len(p.data):
        raise DecodeError(5, "not a well-formed EAP-MD5 packet")
    n = p.data[0]
    return p.data[1 : 1 + n], p.data[1 + n :]


def md5_response(identifier: int, password: bytes, challenge: bytes, name: bytes = b"") -> EapPacket:
    """RFC 1994 CHAP value: MD5(identifier || secret || challenge)."""
    value = hashlib.md5(bytes([identifier]) + password + challenge).digest()
    return EapPacket(EapCode.RESPONSE, identifier, TYPE_MD5, bytes([len(value)]) + value + name)


def identity_response(identifier: int, identity: str) -> EapPacket:
    return EapPacket(EapCode.RESPONSE, identifier, TYPE_IDENTITY, identity.encode())


def nak(identifier: int, wanted: int = TYPE_MD5) -> EapPacket:
    return EapPacket(EapCode.RESPONSE, identifier, TYPE_NAK, bytes([wanted]))


def method_of(payload: bytes | None) -> str | None:
    """The authentication method an EAP Response speaks ("md5", "peap", "type-99"); None for
    Identity, Notification and Nak (no method yet), Requests, and what does not decode."""
    if not payload or len(payload) < 5 or payload[0] != EapCode.RESPONSE:
        return None
    t = payload[4]
    if t in (0, TYPE_IDENTITY, TYPE_NOTIFICATION, TYPE_NAK):
        return None
    return METHODS.get(t, f"type-{t}")
