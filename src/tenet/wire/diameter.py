"""Diameter AVPs (RFC 6733 §4.1) as EAP-TTLS carries them inside its tunnel (RFC 5281 §10). Pure.

    Code (4) | Flags (1: V vendor, M mandatory) | Length (3: header + data) | [Vendor-ID (4)] | Data | pad to 4

RADIUS attribute codes double as AVP codes (User-Name 1, User-Password 2, EAP-Message 79).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from tenet.wire.errors import DecodeError

FLAG_V, FLAG_M = 0x80, 0x40
USER_NAME, USER_PASSWORD, REPLY_MESSAGE, EAP_MESSAGE = 1, 2, 18, 79


@dataclass(frozen=True)
class Avp:
    code: int
    data: bytes
    mandatory: bool = True
    vendor: int | None = None


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def encode(avps: Iterable[Avp]) -> bytes:
    out = b""
    for a in avps:
        flags = (FLAG_M if a.mandatory else 0) | (FLAG_V if a.vendor is not None else 0)
        head = struct.pack("!I", a.code) + bytes([flags])
        vendor = struct.pack("!I", a.vendor) if a.vendor is not None else b""
        length = 8 + len(vendor) + len(a.data)
        if length >= 1 << 24:
            raise ValueError(f"AVP {a.code} is too long ({length} bytes)")
        out += head + length.to_bytes(3, "big") + vendor + a.data + b"\x00" * _pad(length)
    return out


def decode(b: bytes) -> tuple[Avp, ...]:
    out, off = [], 0
    while off < len(b):
        if len(b) - off < 8:
            raise DecodeError(off, "AVP header shorter than 8 bytes")
        code, flags, length = struct.unpack_from("!I", b, off)[0], b[off + 4], int.from_bytes(b[off + 5 : off + 8], "big")
        head = 12 if flags & FLAG_V else 8
        if length < head or off + length > len(b):
            raise DecodeError(off + 5, f"AVP length {length} outside {head}..{len(b) - off}")
        vendor = struct.unpack_from("!I", b, off + 8)[0] if flags & FLAG_V else None
        out.append(Avp(code, bytes(b[off + head : off + length]), bool(flags & FLAG_M), vendor))
        off += length + _pad(length)
    return tuple(out)


def pap(user_name: str, password: str) -> bytes:
    """The AVPs of TTLS-PAP (RFC 5281 §11.2.5): User-Name and the password in the clear (the
    tunnel protects it)."""
    return encode((Avp(USER_NAME, user_name.encode()), Avp(USER_PASSWORD, password.encode())))
