"""The EAP-TLS framing of TLS records (RFC 5216 §3.1), shared by EAP-TTLS (RFC 5281 §9.1) and
PEAP (MS-PEAP §2.2.2): the Type-Data after the EAP type. Pure.

    Flags (L length included, M more fragments, S start; TTLS and PEAP put their version in
    the low 3 bits) | TLS Message Length (4 bytes, when L) | TLS data

A TLS flight bigger than one EAP packet travels as fragments, each acknowledged by an empty
packet from the other side; a handshake with certificates is 2-4 KB, so it always does.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from tenet.wire.errors import DecodeError

FLAG_L, FLAG_M, FLAG_S = 0x80, 0x40, 0x20
VERSION_MASK = 0x07
MAX_MESSAGE = 1 << 16  # a flight bigger than this is an attack on our memory, not a handshake
TYPE_TLS, TYPE_TTLS, TYPE_PEAP = 13, 21, 25


@dataclass(frozen=True)
class TlsFrame:
    flags: int  # FLAG_L | FLAG_M | FLAG_S, without the version bits
    version: int = 0
    length: int | None = None  # the TLS Message Length, present with FLAG_L
    data: bytes = b""

    @property
    def start(self) -> bool:
        return bool(self.flags & FLAG_S)

    @property
    def more(self) -> bool:
        return bool(self.flags & FLAG_M)

    @property
    def is_ack(self) -> bool:
        """An empty packet: the acknowledgement of a fragment (or an empty answer)."""
        return not self.data and not self.flags & (FLAG_S | FLAG_M)


def decode(type_data: bytes) -> TlsFrame:
    if not type_data:
        raise DecodeError(0, "EAP-TLS packet without its flags byte")
    flags, version = type_data[0] & ~VERSION_MASK & 0xFF, type_data[0] & VERSION_MASK
    if flags & ~(FLAG_L | FLAG_M | FLAG_S):
        raise DecodeError(0, f"EAP-TLS flags 0x{type_data[0]:02x} set reserved bits")
    if not flags & FLAG_L:
        return TlsFrame(flags, version, None, bytes(type_data[1:]))
    if len(type_data) < 5:
        raise DecodeError(1, "EAP-TLS L flag without a 4-byte TLS Message Length")
    (length,) = struct.unpack_from("!I", type_data, 1)
    if length > MAX_MESSAGE:
        raise DecodeError(1, f"TLS Message Length {length} exceeds {MAX_MESSAGE}")
    return TlsFrame(flags, version, length, bytes(type_data[5:]))


def encode(f: TlsFrame) -> bytes:
    if not 0 <= f.version <= VERSION_MASK:
        raise ValueError(f"version {f.version} does not fit 3 bits")
    head = bytes([f.flags | f.version])
    if f.flags & FLAG_L:
        if f.length is None:
            raise ValueError("FLAG_L needs the TLS Message Length")
        head += struct.pack("!I", f.length)
    return head + f.data


def ack(version: int = 0) -> bytes:
    """An empty packet: "got your fragment, send the next" (or "nothing to say")."""
    return encode(TlsFrame(0, version))


def fragments(message: bytes, size: int, version: int = 0) -> tuple[bytes, ...]:
    """The Type-Data of each packet carrying `message`, at most `size` TLS bytes apiece: the
    first with L and the total length, all but the last with M. A message that fits goes whole,
    without L (RFC 5216 §3.1: L is for the first of several)."""
    if size < 1:
        raise ValueError(f"fragment size {size} must be positive")
    if len(message) <= size:
        return (encode(TlsFrame(0, version, None, message)),)
    parts = [message[i : i + size] for i in range(0, len(message), size)]
    out = [encode(TlsFrame(FLAG_L | FLAG_M, version, len(message), parts[0]))]
    out += [encode(TlsFrame(FLAG_M if i < len(parts) - 1 else 0, version, None, p)) for i, p in enumerate(parts) if i]
    return tuple(out)


@dataclass(frozen=True)
class Reassembly:
    """The fragments of one incoming message so far. `add` each frame; when `complete`, `data`
    is the whole message. Strict where a mistake would corrupt TLS: a total that disagrees with
    the announced length, or a message growing past MAX_MESSAGE."""

    expected: int | None = None
    data: bytes = b""
    complete: bool = False

    def add(self, f: TlsFrame) -> "Reassembly":
        if self.complete:
            raise ValueError("the message is complete: start a new Reassembly")
        expected = self.expected
        if f.length is not None:
            if expected is not None and f.length != expected:
                raise DecodeError(1, f"TLS Message Length changed from {expected} to {f.length} mid-message")
            expected = f.length
        data = self.data + f.data
        if len(data) > MAX_MESSAGE or (expected is not None and len(data) > expected):
            raise DecodeError(0, f"fragments add up to {len(data)} bytes, more than the "
                                 f"{expected if expected is not None else MAX_MESSAGE} announced")
        if f.more:
            return Reassembly(expected, data, False)
        if expected is not None and len(data) != expected:
            raise DecodeError(0, f"last fragment ends the message at {len(data)} bytes, not the {expected} announced")
        return Reassembly(expected, data, True)
